from bpnet_core.chrombpnet import fit_chrombpnet
from bpnet_core.runtime import run_logged

run_logged(
    fit_chrombpnet,
    snakemake.params.config,
    snakemake.input.bias_model,
    snakemake.output.model,
    snakemake.output.accessibility,
    snakemake.output.history,
    qc_path=snakemake.input.bias_qc,
    accept=snakemake.params.accept,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
