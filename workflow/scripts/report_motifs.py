from bpnet_core.modisco import report_motifs
from bpnet_core.runtime import run_logged

run_logged(
    report_motifs,
    snakemake.input.h5,
    snakemake.params.folder,
    snakemake.params.config["motifs"],
    log_path=snakemake.log[0],
)
