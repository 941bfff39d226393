rule evaluate_model:
    input:
        unpack(evaluate_inputs),
    output:
        performance="results/{name}/evaluate/{name}.performance.tsv",
        regions="results/{name}/evaluate/{name}.regions.tsv",
    params:
        config=stage_params("evaluate"),
    log:
        "results/{name}/logs/evaluate_model.log",
    benchmark:
        "results/{name}/benchmarks/evaluate_model.tsv"
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/evaluate_model.py"
