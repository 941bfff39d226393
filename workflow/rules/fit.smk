# A given model file of another program (an official ChromBPNet/BPNet Keras
# .h5, a bpnet-lite .torch) is converted once; every stage reads the
# converted file (see model_paths).
rule import_model:
    wildcard_constraints:
        name=IMPORTS,
    input:
        imported_model_source,
    output:
        layout.path("imported_model"),
    params:
        trimming=import_trimming,
    log:
        layout.log("import_model.{model_key}"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/import_model.py"


rule fit_model:
    wildcard_constraints:
        name=FITS_BPNET,
    input:
        unpack(fit_inputs),
    output:
        model=protected(layout.path("model")),
        history=layout.path("history"),
    params:
        config=stage_params("fit"),
    log:
        layout.log("fit_model"),
    benchmark:
        layout.benchmark("fit_model")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=720,
    threads: JOB_THREADS
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
        model=protected(layout.path("model")),
        accessibility=protected(layout.path("accessibility_model")),
        history=layout.path("history"),
    params:
        config=stage_params("fit"),
        accept=stage_value("bias_qc", "accept"),
    log:
        layout.log("fit_chrombpnet"),
    benchmark:
        layout.benchmark("fit_chrombpnet")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=720,
    threads: JOB_THREADS
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
        layout.path("accessibility_model"),
    log:
        layout.log("extract_accessibility_model"),
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
        layout.path("model"),
    log:
        layout.log("assemble_chrombpnet_model"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/assemble_chrombpnet_model.py"
