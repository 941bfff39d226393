# A batch run's cross-dataset table and page. Built here once every dataset
# is done; a run that fails writes it too (see `onerror` in the Snakefile),
# listing the failed and unfinished datasets as such.
rule summarize_datasets:
    input:
        dataset_reports,
    output:
        tsv="results/summary/{batch}.tsv",
        html="results/summary/{batch}.html",
    params:
        datasets=dataset_sources(),
    log:
        "results/summary/{batch}.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/summarize_datasets.py"
