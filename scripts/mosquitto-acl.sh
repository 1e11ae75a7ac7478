#!/usr/bin/env bash
# Writes Mosquitto's acl_file for a dolbom fleet (config/mosquitto/fleet.example shows the list).
#   scripts/mosquitto-acl.sh fleet.txt > /etc/mosquitto/dolbom/acl
# A kiosk publishes only under its own dolbom/v1/{center}/{kiosk}/ and reads only its own cmd/;
# the relay reads events and nothing else; a staff client writes commands for its center only.
# Mosquitto denies whatever no line allows. Names: letters, digits, '-' and '_' (as dolbom's ids).
set -euo pipefail
fleet="${1:?usage: $0 FLEET_FILE}"
id_ok() { [[ "$1" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || { echo "$fleet:$line_no: \`$1\` is not a dolbom id" >&2; exit 1; }; }
echo "# Written by scripts/mosquitto-acl.sh from $(basename "$fleet"); edit the fleet list, not this file."
line_no=0
while read -r kind a b extra || [[ -n "${kind:-}" ]]; do
  line_no=$((line_no + 1))
  [[ -z "${kind:-}" || "$kind" == \#* ]] && continue
  [[ -z "${extra:-}" ]] || { echo "$fleet:$line_no: too many fields" >&2; exit 1; }
  case "$kind" in
    kiosk)
      id_ok "${a:-}"; id_ok "${b:-}"
      root="dolbom/v1/$a/$b"
      printf '\nuser kiosk-%s-%s\n' "$a" "$b"
      # Status, events, telemetry, alerts, command results: all under its own root.
      for t in status 'event/#' 'telemetry/#' 'alert/#' cmd/result; do printf 'topic write %s/%s\n' "$root" "$t"; done
      # The staff commands addressed to it (and its own results coming back).
      printf 'topic read %s/cmd/#\n' "$root"
      # Home Assistant discovery (only when [homeassistant] is enabled; its device ids carry the kiosk's).
      printf 'topic write homeassistant/+/dolbom_%s_%s/#\n' "$a" "$b"
      ;;
    relay)
      id_ok "${a:-}"
      printf '\nuser relay-%s\n' "$a"
      if [[ -n "${b:-}" ]]; then id_ok "$b"; printf 'topic read dolbom/v1/%s/+/event/#\n' "$b"
      else printf 'topic read dolbom/v1/+/+/event/#\n'; fi
      ;;
    staff)
      id_ok "${a:-}"; id_ok "${b:-}"
      printf '\nuser staff-%s\n' "$a"
      for c in silence resolve; do printf 'topic write dolbom/v1/%s/+/cmd/%s\n' "$b" "$c"; done
      for t in cmd/result 'alert/#' status; do printf 'topic read dolbom/v1/%s/+/%s\n' "$b" "$t"; done
      ;;
    *) echo "$fleet:$line_no: unknown kind \`$kind\` (kiosk, relay or staff)" >&2; exit 1 ;;
  esac
done < "$fleet"
