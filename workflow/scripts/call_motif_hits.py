from bpnet_core.motif_hits import call_motif_hits
from bpnet_core.runtime import run_logged

run_logged(
    call_motif_hits,
    snakemake.params.config,
    snakemake.input.ohe,
    snakemake.input.attr,
    snakemake.input.loci,
    snakemake.input.modisco,
    dict(snakemake.output.items()),
    snakemake.input.get("motifs"),
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
