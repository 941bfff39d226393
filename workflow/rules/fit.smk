rule fit_model:
    wildcard_constraints:
        name=BPNET,
    input:
        unpack(fit_inputs),
    output:
        model=protected("results/{name}/fit/{name}.torch"),
        history="results/{name}/fit/{name}.history.tsv",
    params:
        config=stage_params("fit"),
    log:
        "results/{name}/logs/fit_model.log",
    benchmark:
        "results/{name}/benchmarks/fit_model.tsv"
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=720,
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/fit_model.py"


# ChromBPNet: the full model is trained unless `model` or
# `accessibility_model` names an existing file (see model_paths).
rule fit_chrombpnet:
    wildcard_constraints:
        name=FITS_CHROMBPNET,
    input:
        unpack(fit_inputs),
    output:
        model=protected("results/{name}/fit/{name}.torch"),
        accessibility=protected("results/{name}/fit/{name}.accessibility.torch"),
        history="results/{name}/fit/{name}.history.tsv",
    params:
        config=stage_params("fit"),
        accept=stage_value("bias_qc", "accept"),
    log:
        "results/{name}/logs/fit_chrombpnet.log",
    benchmark:
        "results/{name}/benchmarks/fit_chrombpnet.tsv"
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=720,
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/fit_chrombpnet.py"


rule extract_accessibility_model:
    wildcard_constraints:
        name=EXTRACTS_ACCESSIBILITY,
    input:
        model_file("model"),
    output:
        "results/{name}/fit/{name}.accessibility.torch",
    log:
        "results/{name}/logs/extract_accessibility_model.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/extract_accessibility_model.py"


rule assemble_chrombpnet_model:
    wildcard_constraints:
        name=ASSEMBLES_CHROMBPNET,
    input:
        bias=model_file("bias_model"),
        accessibility=model_file("accessibility_model"),
    output:
        "results/{name}/fit/{name}.torch",
    log:
        "results/{name}/logs/assemble_chrombpnet_model.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/assemble_chrombpnet_model.py"
