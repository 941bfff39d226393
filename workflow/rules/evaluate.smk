rule evaluate_model:
    wildcard_constraints:
        name=SINGLE,
    input:
        unpack(evaluate_inputs),
    output:
        performance=layout.path("performance"),
        regions=layout.path("regions"),
    params:
        config=stage_params("evaluate"),
    log:
        layout.log("evaluate_model"),
    benchmark:
        layout.benchmark("evaluate_model")
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/evaluate_model.py"
