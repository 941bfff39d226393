from bpnet_core.modisco import discover_motifs
from bpnet_core.runtime import run_logged

run_logged(
    discover_motifs,
    snakemake.input.ohe,
    snakemake.input.attr,
    snakemake.output[0],
    n_seqlets=snakemake.params.n_seqlets,
    window=snakemake.params.window,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
