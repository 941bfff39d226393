from bpnet_core.report import write_dataset_report
from bpnet_core.runtime import run_logged

run_logged(
    write_dataset_report,
    snakemake.params.results,
    snakemake.wildcards.name,
    snakemake.output[0],
    snakemake.params.config,
    log_path=snakemake.log[0],
)
