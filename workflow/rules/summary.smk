# A batch run's cross-dataset table and page. Built here once every dataset
# is done; a run that fails writes it too (see `onerror` in the Snakefile),
# listing the failed and unfinished datasets as such.
rule summarize_datasets:
    input:
        dataset_reports,
    output:
        tsv=layout.batch_summary(suffix="tsv"),
        html=layout.batch_summary(suffix="html"),
    params:
        datasets=dataset_sources(),
    log:
        layout.batch_summary(suffix="log"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/summarize_datasets.py"
