"""Turn the registry-shipped ONNX files into the ones dolbom runs.

Run by scripts/setup.sh inside a pinned virtualenv (see models/requirements.txt):

    python models/convert.py SRC_DIR DST_DIR

- YuNet 2023mar ships with a fixed 1x3x640x640 input. Its graph only uses
  Reshape with -1 and Resize with scales, so freeing H and W is enough to let
  the kiosk detect at the camera's own aspect ratio (any multiple of 32).
- SFace 2021dec lists its 174 weights as graph inputs as well as initializers.
  ONNX Runtime must then treat them as overridable and cannot constant-fold
  them; dropping them from the inputs roughly halves inference time.
"""

import sys
from pathlib import Path

import onnx


def free_yunet_input(src: Path, dst: Path) -> None:
    model = onnx.load(str(src))
    graph = model.graph
    (inp,) = [i for i in graph.input if i.name == "input"]
    dims = inp.type.tensor_type.shape.dim
    dims[2].ClearField("dim_value")
    dims[2].dim_param = "height"
    dims[3].ClearField("dim_value")
    dims[3].dim_param = "width"
    for out in graph.output:
        anchors = out.type.tensor_type.shape.dim[1]
        anchors.ClearField("dim_value")
        anchors.dim_param = "anchors_" + out.name.split("_")[-1]
    # Stale intermediate shapes computed for 640x640 would contradict the new input.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def drop_weight_inputs(src: Path, dst: Path) -> None:
    model = onnx.load(str(src))
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    keep = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def main() -> None:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    free_yunet_input(src / "face_detection_yunet_2023mar.onnx", dst / "yunet_2023mar_dynamic.onnx")
    drop_weight_inputs(src / "face_recognition_sface_2021dec.onnx", dst / "sface_2021dec.onnx")


if __name__ == "__main__":
    main()
