from bpnet_core.report import write_dataset_report
from bpnet_core.runtime import run_logged
from bpnet_core.summary import write_run_params


def write_report(results, name, report_html, params_json, config):
    # The record first: a report without one could not be checked for staleness.
    write_run_params(params_json, config)
    write_dataset_report(results, name, report_html, config)


run_logged(
    write_report,
    snakemake.params.results,
    snakemake.wildcards.name,
    snakemake.output[0],
    snakemake.output.params,
    snakemake.params.config,
    log_path=snakemake.log[0],
)
