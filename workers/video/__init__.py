"""Video for LabelHub, framework-free (no Django): frame-exact decoding and probing with PyAV, mask
propagation across frames (optical-flow fallback and SAM 2 with bounded memory), polygon interpolation
between keyframes, and the video segmentation measures (J&F)."""
