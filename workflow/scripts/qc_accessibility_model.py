from bpnet_core.bias_free_qc import qc_accessibility_model
from bpnet_core.runtime import run_logged

run_logged(
    qc_accessibility_model,
    snakemake.params.config,
    snakemake.input.get("modisco_h5"),
    snakemake.params.folder,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
