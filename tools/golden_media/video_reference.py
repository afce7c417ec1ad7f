#!/usr/bin/env python3
"""Golden fixture of the reference's frame rule, made with OpenCV as the reference does.

Run from the repository root:  python3 tools/golden_media/video_reference.py
Needs: numpy, safetensors, opencv-python-headless. Reads
crates/mmcl-media/tests/fixtures/video_h264.mp4 (made by make_fixtures.py) and writes
video_reference.safetensors beside it: `frames` u8 [N, H, W, 3] (RGB) and `indices` i64 [N],
the decoded-frame numbers kept.

The rule (the reference's offline extraction, restated): n = int(CAP_PROP_FPS); read the
frames in order and keep those whose running count is a multiple of n, i.e. the first frame
of every n-frame block, so one frame per second at integer frame rates.
"""
import os
import sys

import cv2
import numpy as np
from safetensors.numpy import save_file

FIXTURES = os.path.join("crates", "mmcl-media", "tests", "fixtures")


def main():
    if not os.path.isdir("crates"):
        sys.exit("run from the repository root")
    cap = cv2.VideoCapture(os.path.join(FIXTURES, "video_h264.mp4"))
    block = max(int(cap.get(cv2.CAP_PROP_FPS)), 1)
    kept, indices, count = [], [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if count % block == 0:
            kept.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            indices.append(count)
        count += 1
    frames = np.stack(kept).astype(np.uint8)
    out = os.path.join(FIXTURES, "video_reference.safetensors")
    save_file({"frames": frames, "indices": np.array(indices, dtype=np.int64)}, out)
    print(f"{out}: {len(kept)} of {count} frames (block {block}), indices {indices}")


if __name__ == "__main__":
    main()
