"""Simulators of the demo and test data, kept out of the runtime modules.

- `chip`: a ChIP-nexus-like experiment (stranded signal and control
  bigWigs, reads as BAM) with planted TF motifs (`make demo`);
- `atac`: an ATAC-seq-like experiment (Tn5 cuts with a sequence bias,
  accessibility that follows the planted motifs) for ChromBPNet
  (`make demo-atac`).
"""
