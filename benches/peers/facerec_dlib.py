"""Peer A: the classic face_recognition (dlib) video loop, as in its facerec_from_video_file.py.

Every frame, at the clip's own resolution: BGR to RGB, face_locations with the HOG detector (one
upsample, the library default), face_encodings (dlib's ResNet, one jitter, five-point landmarks),
compare_faces at the library's default tolerance 0.6 and, when several people match, the nearest
by face_distance. Enrolment: each photo must show exactly one face (as dolbom enrol asks).
dlib runs its HOG detector and its network on one thread; it has no thread setting.
"""

import time

import cv2
import face_recognition
import numpy as np

import common

TOLERANCE = 0.6


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    names, known = [], []
    for ident, photos in args.people:
        for photo in photos:
            image = face_recognition.load_image_file(photo)
            locations = face_recognition.face_locations(image)
            if len(locations) != 1:
                raise SystemExit(f"{photo}: {len(locations)} faces found, enrolment needs exactly one")
            known.append(face_recognition.face_encodings(image, locations)[0])
            names.append(ident)

    matched, n, faces, fps = {}, 0, 0, 0.0
    started = time.perf_counter()
    for frame, fps in common.frames(args.clip):
        n += 1
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        locations = face_recognition.face_locations(rgb)
        for encoding in face_recognition.face_encodings(rgb, locations):
            faces += 1
            hits = face_recognition.compare_faces(known, encoding, tolerance=TOLERANCE)
            if any(hits):
                distances = face_recognition.face_distance(known, encoding)
                best = int(np.argmin(np.where(hits, distances, np.inf)))
                matched[names[best]] = matched.get(names[best], 0) + 1
    common.log(f"{n} frames in {time.perf_counter() - started:.1f} s after loading")
    common.report("face_recognition_dlib", n, fps, faces, matched)


if __name__ == "__main__":
    main()
