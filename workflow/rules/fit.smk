if not CHROMBPNET:

    rule fit_model:
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
if CHROMBPNET and trains("model") and trains("accessibility_model"):

    rule fit_chrombpnet:
        input:
            unpack(fit_inputs),
        output:
            model=protected("results/{name}/fit/{name}.torch"),
            accessibility=protected("results/{name}/fit/{name}.accessibility.torch"),
            history="results/{name}/fit/{name}.history.tsv",
        params:
            config=stage_params("fit"),
            accept=STAGES["bias_qc"].accept,
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


if CHROMBPNET and not trains("model") and trains("accessibility_model"):

    rule extract_accessibility_model:
        input:
            MODELS["model"],
        output:
            "results/{name}/fit/{name}.accessibility.torch",
        log:
            "results/{name}/logs/extract_accessibility_model.log",
        conda:
            "../envs/bpnet_core.yaml"
        script:
            "../scripts/extract_accessibility_model.py"


if CHROMBPNET and trains("model") and not trains("accessibility_model"):

    rule assemble_chrombpnet_model:
        input:
            bias=MODELS["bias_model"],
            accessibility=MODELS["accessibility_model"],
        output:
            "results/{name}/fit/{name}.torch",
        log:
            "results/{name}/logs/assemble_chrombpnet_model.log",
        conda:
            "../envs/bpnet_core.yaml"
        script:
            "../scripts/assemble_chrombpnet_model.py"
