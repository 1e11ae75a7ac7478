#!/usr/bin/env bash
# Writes Mosquitto's acl_file for a dolbom fleet (config/mosquitto/fleet.example shows the list).
#   scripts/mosquitto-acl.sh [--discovery-prefix PREFIX] fleet.txt > /etc/mosquitto/dolbom/acl
# A kiosk publishes only under its own dolbom/v1/{center}/{kiosk}/ and reads only its own cmd/;
# the relay reads events and nothing else; a staff client (the staff console) writes commands for
# its center only and reads what that center's kiosks publish.
# Mosquitto denies whatever no line allows.
#
# Ids are dolbom's (crates/contract/src/ids.rs): 1 to 64 letters, digits, '-', '_' or '.', not
# starting with '.'. User names join kind and ids with '@', which no id can contain (and which
# Mosquitto allows in a user name; only ':' is refused there), so `kiosk@sun-flower@door` and
# `kiosk@sun@flower-door` stay two users. Mosquitto merges repeated `user` blocks, so a name that
# comes out twice is refused here rather than quietly given both blocks' rights.
#
# --discovery-prefix: Home Assistant's discovery prefix, the kiosks' [homeassistant]
# discovery_prefix (default "homeassistant").
set -euo pipefail
prefix=homeassistant
if [[ "${1:-}" == --discovery-prefix ]]; then
  prefix="${2:?--discovery-prefix needs a value}"; shift 2
fi
fleet="${1:?usage: $0 [--discovery-prefix PREFIX] FLEET_FILE}"
[[ $# -eq 1 ]] || { echo "usage: $0 [--discovery-prefix PREFIX] FLEET_FILE" >&2; exit 1; }
# As the kiosk's homeassistant.discovery_prefix check: a topic without wildcards or a stray '/'.
if [[ -z "$prefix" || ${#prefix} -gt 64 || "$prefix" == /* || "$prefix" == */ || "$prefix" == *//* || "$prefix" == *[+#]* ]]; then
  echo "--discovery-prefix \`$prefix\`: use 1 to 64 characters of a topic, without wildcards or a leading or trailing '/'" >&2
  exit 1
fi
line_no=0
id_ok() { [[ "$1" =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$ ]] || { echo "$fleet:$line_no: \`$1\` is not a dolbom id" >&2; exit 1; }; }
declare -A users=() nodes=()
# Every user name once: a repeat would merge two clients' rights in Mosquitto.
user() {
  if [[ -n "${users[$1]:-}" ]]; then
    echo "$fleet:$line_no: user \`$1\` already comes from line ${users[$1]}; each client needs its own line" >&2
    exit 1
  fi
  users[$1]=$line_no
  printf '\nuser %s\n' "$1"
}
# The kiosk's Home Assistant node id (crates/kiosk/src/air/homeassistant.rs node_id): '.' and '_'
# both become '_' there, so two kiosks can meet in one node id; refuse that.
node_id() { local c="${1//./_}" k="${2//./_}"; printf 'dolbom_%s_%s' "$c" "$k"; }
echo "# Written by scripts/mosquitto-acl.sh from $(basename "$fleet"); edit the fleet list, not this file."
while read -r kind a b extra || [[ -n "${kind:-}" ]]; do
  line_no=$((line_no + 1))
  [[ -z "${kind:-}" || "$kind" == \#* ]] && continue
  [[ -z "${extra:-}" ]] || { echo "$fleet:$line_no: too many fields" >&2; exit 1; }
  case "$kind" in
    kiosk)
      id_ok "${a:-}"; id_ok "${b:-}"
      node="$(node_id "$a" "$b")"
      if [[ -n "${nodes[$node]:-}" ]]; then
        echo "$fleet:$line_no: kiosk $a $b has the Home Assistant node id \`$node\` of line ${nodes[$node]}; rename one" >&2
        exit 1
      fi
      nodes[$node]=$line_no
      root="dolbom/v1/$a/$b"
      user "kiosk@$a@$b"
      # Status, events, telemetry, alerts, the roster, command results: all under its own root.
      for t in status 'event/#' 'telemetry/#' 'alert/#' roster cmd/result; do printf 'topic write %s/%s\n' "$root" "$t"; done
      # The staff commands addressed to it (and its own results coming back).
      printf 'topic read %s/cmd/#\n' "$root"
      # Home Assistant discovery (only used when [homeassistant] is enabled).
      printf 'topic write %s/+/%s/#\n' "$prefix" "$node"
      ;;
    relay)
      id_ok "${a:-}"
      user "relay@$a"
      if [[ -n "${b:-}" ]]; then id_ok "$b"; printf 'topic read dolbom/v1/%s/+/event/#\n' "$b"
      else printf 'topic read dolbom/v1/+/+/event/#\n'; fi
      ;;
    staff)
      id_ok "${a:-}"; id_ok "${b:-}"
      user "staff@$b@$a"
      # Every command a kiosk takes (the staff console's too), never cmd/result: a staff client
      # must not be able to forge a kiosk's answer.
      for c in silence resolve thermometer checkin consent enroll erase; do
        printf 'topic write dolbom/v1/%s/+/cmd/%s\n' "$b" "$c"
      done
      # What the center's kiosks publish: the console shows events, alerts, status and roster.
      printf 'topic read dolbom/v1/%s/#\n' "$b"
      ;;
    *) echo "$fleet:$line_no: unknown kind \`$kind\` (kiosk, relay or staff)" >&2; exit 1 ;;
  esac
done < "$fleet"
