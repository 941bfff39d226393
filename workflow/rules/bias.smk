# ChromBPNet's bias model: the given `bias_model` file, else the bias part of
# a given full `model`, else trained on low-count background regions; then
# checked before anything uses it. Last, the accessibility model is checked
# for what the bias model should have taken: the enzyme's preference.


rule extract_bias_model:
    wildcard_constraints:
        name=EXTRACTS_BIAS,
    input:
        model_file("model"),
    output:
        layout.path("bias_model"),
    log:
        layout.log("extract_bias_model"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/extract_bias_model.py"


rule fit_bias_model:
    wildcard_constraints:
        name=FITS_BIAS,
    input:
        unpack(bias_fit_inputs),
    output:
        model=protected(layout.path("bias_model")),
        history=layout.path("bias_history"),
    params:
        config=stage_params("bias_fit"),
    log:
        layout.log("fit_bias_model"),
    benchmark:
        layout.benchmark("fit_bias_model")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=720,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/fit_bias_model.py"


rule attribute_bias_model:
    wildcard_constraints:
        name=CHROMBPNET,
    input:
        unpack(bias_qc_inputs),
    output:
        ohe=layout.path("bias_qc_ohe"),
        attr=layout.path("bias_qc_attr"),
    params:
        config=stage_params("bias_qc"),
    log:
        layout.log("attribute_bias_model"),
    benchmark:
        layout.benchmark("attribute_bias_model")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/attribute_bias_model.py"


rule discover_bias_motifs:
    wildcard_constraints:
        name=CHROMBPNET,
    input:
        ohe=layout.path("bias_qc_ohe"),
        attr=layout.path("bias_qc_attr"),
    output:
        layout.path("bias_qc_modisco"),
    params:
        n_seqlets=stage_value("bias_qc", "n_seqlets"),
        window=stage_value("bias_qc", "window"),
    log:
        layout.log("discover_bias_motifs"),
    benchmark:
        layout.benchmark("discover_bias_motifs")
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/discover_bias_motifs.py"


rule qc_bias_model:
    wildcard_constraints:
        name=CHROMBPNET,
    input:
        unpack(bias_qc_inputs),
        h5=layout.path("bias_qc_modisco"),
    output:
        json=layout.path("bias_qc_json"),
        html=layout.path("bias_qc_html"),
        motifs=layout.path("bias_qc_motifs"),
    params:
        config=stage_params("bias_qc"),
        folder=lambda wildcards, output: os.path.dirname(output.json),
    log:
        layout.log("qc_bias_model"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/qc_bias_model.py"


rule qc_accessibility_model:
    wildcard_constraints:
        name=CHROMBPNET,
    input:
        unpack(bias_free_qc_inputs),
    output:
        json=layout.path("bias_free_qc_json"),
        html=layout.path("bias_free_qc_html"),
        footprints=layout.path("bias_free_qc_footprints"),
        figure=layout.path("bias_free_qc_figure"),
    params:
        config=stage_params("bias_free_qc"),
        folder=lambda wildcards, output: os.path.dirname(output.json),
    log:
        layout.log("qc_accessibility_model"),
    benchmark:
        layout.benchmark("qc_accessibility_model")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=120,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/qc_accessibility_model.py"
