rule write_report:
    input:
        dataset_outputs,
    output:
        report(
            "results/{name}/{name}.report.html",
            category="Dataset reports",
            subcategory="{name}",
        ),
        # The stage parameters of this run, which the batch summary compares
        # with the config to call results made from another config "stale".
        params="results/{name}/{name}.params.json",
    params:
        config=all_stage_params,
        results="results/{name}",
    log:
        "results/{name}/logs/write_report.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/write_report.py"
