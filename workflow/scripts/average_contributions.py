from bpnet_core.folds import average_contributions
from bpnet_core.runtime import run_logged

run_logged(
    average_contributions,
    snakemake.input.ohe,
    snakemake.input.attr,
    snakemake.input.loci,
    snakemake.output.ohe,
    snakemake.output.attr,
    snakemake.output.loci,
    snakemake.input.sequences,
    snakemake.output.bigwig,
    log_path=snakemake.log[0],
)
