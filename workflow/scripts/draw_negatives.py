from bpnet_core.negatives import make_negatives
from bpnet_core.runtime import run_logged

run_logged(make_negatives, snakemake.params.config, snakemake.output.gc, log_path=snakemake.log[0])
