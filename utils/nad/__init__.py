"""Neural Anisotropy Directions: NAD estimation and its resumable computation, NAD files and
plots, the linearly separable D(v) and the directional-bias experiment, grouped training of
many small networks, NAD poisoning, the authors' published tables."""
