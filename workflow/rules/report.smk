rule write_report:
    input:
        dataset_outputs,
    output:
        report(
            layout.path("report"),
            category="Dataset reports",
            subcategory="{name}",
        ),
        # The stage parameters of this run, which the batch summary compares
        # with the config to call results made from another config "stale".
        params=layout.path("params"),
    params:
        config=all_stage_params,
        results=layout.dataset_dir(),
    log:
        layout.log("write_report"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/write_report.py"
