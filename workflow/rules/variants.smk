# Variant effect scores: one job per chromosome of the variants file (in
# parallel on a cluster), then one merge that pools the jobs' nulls into the
# p-values, writes the tabix-indexed table and the variants page.


rule score_variants:
    input:
        unpack(variants_inputs),
    output:
        scores=layout.path("variant_chunk"),
        null=layout.path("variant_chunk_null"),
    params:
        config=variant_chunk_params,
    log:
        layout.log("score_variants.{chrom}"),
    benchmark:
        layout.benchmark("score_variants.{chrom}")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/score_variants.py"


rule merge_variant_scores:
    input:
        unpack(variant_merge_inputs),
    output:
        scores=layout.path("variant_scores"),
        index=layout.path("variant_scores_index"),
        null=layout.path("variant_null"),
        html=layout.path("variant_html"),
    params:
        config=stage_params("variants"),
    log:
        layout.log("merge_variant_scores"),
    benchmark:
        layout.benchmark("merge_variant_scores")
    resources:
        mem_mb=gpu_mem_mb,
        runtime=60,
    threads: 1
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/merge_variant_scores.py"
