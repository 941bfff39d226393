# Motif instances: Fi-NeMo fits the TF-MoDISco patterns to the attributed
# regions' contributions (on the GPU when there is one).


rule call_motif_hits:
    input:
        unpack(motif_hits_inputs),
        ohe=layout.path("ohe"),
        attr=layout.path("attr"),
        loci=layout.path("attributed_loci"),
        modisco=layout.path("modisco"),
    output:
        hits=layout.path("hits"),
        bed=layout.path("hits_bed"),
        counts=layout.path("hit_counts"),
        cooccurrence=layout.path("hit_cooccurrence"),
        positions=layout.path("hit_positions"),
        finemo=directory(layout.path("finemo")),
    params:
        config=stage_params("motif_hits"),
    log:
        layout.log("call_motif_hits"),
    benchmark:
        layout.benchmark("call_motif_hits")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/call_motif_hits.py"
