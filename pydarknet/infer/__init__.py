"""Inference: what Darknet does with a trained network to get answers from images.

`detect` (examples/detector.c test_detector: letterbox, forward, decode, NMS) built on
`decode` (the heads' get_*_detections and correct_*_boxes) and `nms` (box.c do_nms_sort and
do_nms_obj); `formats` (AlexeyAB's `detector test` lines, `-out` JSON, `-save_labels` files);
`hierarchy` (WordTree predictions), `classify` (examples/classifier.c predict/validate),
`draw` (image.c draw_detections); `inputs` (the network's input: letterbox or resize); the
fast CPU path: `engine` (`InferenceModel`: batch norm folded, channels-last), `winograd` (3x3
convolutions), `prefetch` (images decoded in a background thread), and the reduced precisions
`precision` (bf16) and `quantize` (int8, with torchao).
"""
