rule fit_model:
    input:
        unpack(fit_inputs),
    output:
        model="results/{name}/fit/{name}.torch",
        history="results/{name}/fit/{name}.history.tsv",
    params:
        config=stage_params("fit"),
    log:
        "results/{name}/logs/fit_model.log",
    benchmark:
        "results/{name}/benchmarks/fit_model.tsv"
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/fit_model.py"
