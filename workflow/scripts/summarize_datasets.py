from bpnet_core.runtime import run_logged
from bpnet_core.summary import write_summary

run_logged(
    write_summary,
    snakemake.params.datasets,
    snakemake.output.tsv,
    snakemake.output.html,
    log_path=snakemake.log[0],
)
