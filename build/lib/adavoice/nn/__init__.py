"""Layers shared by the models: FFT blocks, conditional layer norm, variance adaptor parts,
length regulator and the learned aligner."""
