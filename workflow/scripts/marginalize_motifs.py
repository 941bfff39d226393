from bpnet_core.marginalize import marginalize_motifs
from bpnet_core.runtime import run_logged

run_logged(
    marginalize_motifs,
    snakemake.params.config,
    snakemake.params.folder,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
