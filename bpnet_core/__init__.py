"""bpnet_core: the library behind the BPNet / ChromBPNet Snakemake workflow."""

__version__ = "0.1.0"
