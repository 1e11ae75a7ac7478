#!/usr/bin/env bash
# The main job on sample input: sets up what is missing, builds dolbom, enrols two people from
# registry photos, identifies faces in other photos, then runs the kiosk daemon with fever
# screening on a sample clip (the photos walking up to a simulated door, a simulated thermal
# sensor on a pseudo-terminal) against the local MQTT broker, with the relay texting parents
# through a console SMS gateway that prints the texts. Beside the door, simulated air sensors
# (fine dust, CO2) and the outdoor services' stand-in: the air telemetry and a CO2 alert with its
# recovery come in between the door events.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet

bin=target/release/dolbom
photos=.dolbom/testdata
rm -rf .dolbom/demo
mkdir -p .dolbom/demo
# The gallery is sealed as on an installed kiosk: its key is a credential, handed over the way
# systemd's LoadCredential= does it (docs/security.md).
export CREDENTIALS_DIRECTORY="$PWD/.dolbom/demo/credentials"
mkdir -m 0700 "$CREDENTIALS_DIRECTORY"
"$bin" gallery keygen "$CREDENTIALS_DIRECTORY/gallery-key"
# The staff console signs teachers' actions with its own key, which the kiosk lists
# (config/sample-console.toml, config/sample-fever.toml); a teacher's account with a fresh password.
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .dolbom/demo/console.key)
console_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | cut -c1-16)
printf '%s\n' "$console_pw" | "$bin" console passwd --config config/sample-console.toml kim-teacher --name "김선생"

echo "== enrol (config/sample.toml) =="
# A child's face is enrolled only with a guardian's consent on record (docs/consent.md).
"$bin" consent add obama --guardian "Michelle Obama" --relation "어머니 / mother" \
    --given-on "$(date +%F)" --verified-how "signed paper form, ID checked" \
    --purpose face-attendance --purpose template-refresh --until "$(date -d '+1 year' +%F)" --by kim-teacher \
    --config config/sample.toml
"$bin" enroll --config config/sample.toml --person obama --role child --name "Barack Obama" \
    "$photos/face_recognition/obama.jpg" "$photos/face_recognition/obama2.jpg"
"$bin" enroll --config config/sample.toml --person biden --role staff --name "Joe Biden" \
    "$photos/face_recognition/biden.jpg"
# Jiwoo's family said no to face recognition: a tag on her bag, no photo at all (docs/tag.md).
"$bin" tag add jiwoo 62E3086CED --role child --name "이지우" --config config/sample.toml
"$bin" gallery list --config config/sample.toml
"$bin" consent list --config config/sample.toml
echo "the gallery on disk, sealed (ChaCha20-Poly1305); its first line:"
head -n1 .dolbom/demo/gallery.json

echo "== identify photos: Obama in two new photos; the group photo is all strangers =="
"$bin" identify --config config/sample.toml \
    "$photos/face_recognition/obama3.jpg" \
    "$photos/face_recognition/obama_partial_face.jpg" \
    "$photos/insightface/t1.jpg"

# Who walks up, with the skin temperature the simulated thermal sensor gives each face:
# Obama (enrolled as a child, "김민지" in config/directory.toml), Biden (enrolled staff; his photo is tall, so his face stays small
# for the 32x24 sensor: "not measured"), a stranger with an elevated temperature, Obama again.
walkers=("$photos/face_recognition/obama.jpg@36.6" "$photos/face_recognition/biden.jpg@36.4"
         "$photos/unknowns/Female_42_7.jpg@38.4" "$photos/face_recognition/obama3.jpg@36.7")
echo "== sample clip: ${#walkers[@]} people walk up to the door =="
"$bin" sim walk-up --out .dolbom/demo/walkup.avi "${walkers[@]}"

root='dolbom/v1/sunshine/door-1'
# Alerts and telemetry are retained; clear those left on the broker by earlier demo runs.
mosquitto_sub -h 127.0.0.1 -t "$root/alert/#" -t "$root/telemetry/#" --remove-retained -W 1 >/dev/null 2>&1 || true

echo "== kiosk daemon with fever screening (config/sample-fever.toml); MQTT messages as they arrive =="
mosquitto_sub -h 127.0.0.1 -p 1883 -V mqttv5 -v -t "$root/#" &
sub=$!
"$bin" sim thermal --config config/sample-fever.toml --link .dolbom/demo/thermal0 "${walkers[@]}" >/dev/null &
sim=$!
# The air: a classroom whose CO2 climbs past 1,000 ppm and is aired (config/sample-air.csv), and
# AirKorea/KMA answering on loopback with a bad-dust day outside (the key is the demo's own).
(umask 077; echo demo-key > .dolbom/demo/outdoor-key)
"$bin" sim air --pms-link .dolbom/demo/pm0 --co2-link .dolbom/demo/co2 --profile config/sample-air.csv \
    --speed 1 --period 0.5 --seconds 120 >/dev/null &
air=$!
"$bin" sim outdoor --listen 127.0.0.1:18089 --pm10 88 --pm25 41 --temperature -1.5 --humidity 38 \
    --key-file .dolbom/demo/outdoor-key >/dev/null &
outdoor=$!
# Jiwoo's tag held to the reader for a second, through line noise and a damaged frame: one arrival.
"$bin" sim tag 62E3086CED --link .dolbom/demo/tag0 --repeat 20 --noise --bad-checksum --hold 600 >/dev/null &
tag=$!
echo "== relay (config/sample-relay.toml, console SMS gateway): texts to parents are printed as they go out =="
"$bin" relay --config config/sample-relay.toml &
relay=$!
echo "== staff console (config/sample-console.toml) =="
"$bin" console --config config/sample-console.toml &
console=$!
trap 'kill $sub $sim $air $outdoor $tag $relay $console 2>/dev/null || true' EXIT
sleep 0.5
"$bin" kiosk --config config/sample-fever.toml &
kiosk=$!
echo "== door screen / 문 화면: open http://127.0.0.1:8480/ in a browser on this machine while the demo runs =="
echo "== staff console / 교사 콘솔: http://127.0.0.1:8490/  id: kim-teacher  password / 비밀번호: $console_pw =="
# A teacher's app: on the first fever event, silence its alert over MQTT.
fever=$(timeout 60 mosquitto_sub -h 127.0.0.1 -C 1 -t "$root/event/fever" || true)
alert=$(printf '%s' "$fever" | sed -n 's/.*"alert_id":"\([^"]*\)".*/\1/p')
if [ -n "$alert" ]; then
    mosquitto_pub -h 127.0.0.1 -q 1 -t "$root/cmd/silence" \
        -m "{\"alert_id\":\"$alert\",\"by\":\"kim-teacher\",\"request_id\":\"demo-1\"}"
fi
wait $kiosk
sleep 2
kill -TERM $relay 2>/dev/null || true
wait $relay 2>/dev/null || true
echo "== dolbom status =="
"$bin" status --config config/sample-fever.toml || true
echo "== fever alerts on this kiosk (dolbom alerts list) =="
"$bin" alerts list --config config/sample-fever.toml
echo "== what the relay sent, to whom, and why not (dolbom relay log) =="
"$bin" relay log --config config/sample-relay.toml
# The console keeps the day's board, alerts and attendance after the kiosk has stopped: at a
# terminal, leave it up for a look until Enter.
if [ -t 0 ]; then
    read -r -p "== staff console still at http://127.0.0.1:8490/ (kim-teacher / $console_pw); Enter stops it == " _ || true
fi
