# uffdgc-bench: the workloads live in bench/ (one file each) and are compiled into the tool.
# bdwgc variants of gcbench and frag are built from the same sources with BENCH_BDW when
# libgc-dev is installed; the decision is made at configure time (re-run cmake after
# installing it: scripts/run-main.sh does).
set(UGC_BENCH_DIR ${PROJECT_SOURCE_DIR}/bench)
set(UGC_BENCH_SOURCES
  ${UGC_BENCH_DIR}/common.c ${UGC_BENCH_DIR}/hist.c ${UGC_BENCH_DIR}/procfs.c
  ${UGC_BENCH_DIR}/workloads.c ${UGC_BENCH_DIR}/shim_ugc.c
  ${UGC_BENCH_DIR}/gcbench.c ${UGC_BENCH_DIR}/binarytrees.c ${UGC_BENCH_DIR}/frag.c
  ${UGC_BENCH_DIR}/latency.c ${UGC_BENCH_DIR}/mt.c ${UGC_BENCH_DIR}/cold.c
  ${UGC_BENCH_DIR}/compact.c)
target_sources(${tool} PRIVATE ${UGC_BENCH_SOURCES})
target_include_directories(${tool} PRIVATE ${UGC_BENCH_DIR} ${dir})

find_path(UGC_BDW_INCLUDE_DIR gc.h PATH_SUFFIXES gc)
find_library(UGC_BDW_LIBRARY gc)
if(UGC_BDW_INCLUDE_DIR AND UGC_BDW_LIBRARY)
  message(STATUS "uffdgc-bench: bdwgc found (${UGC_BDW_LIBRARY}): --compare bdw enabled")
  add_library(uffdgc_bench_bdw OBJECT
    ${UGC_BENCH_DIR}/shim_bdw.c ${UGC_BENCH_DIR}/gcbench.c ${UGC_BENCH_DIR}/frag.c)
  target_compile_definitions(uffdgc_bench_bdw PRIVATE BENCH_BDW=1)
  target_include_directories(uffdgc_bench_bdw PRIVATE ${UGC_BENCH_DIR} ${UGC_BDW_INCLUDE_DIR})
  target_sources(${tool} PRIVATE $<TARGET_OBJECTS:uffdgc_bench_bdw>)
  target_compile_definitions(${tool} PRIVATE BENCH_HAVE_BDW=1)
  target_link_libraries(${tool} PRIVATE ${UGC_BDW_LIBRARY})
else()
  message(STATUS "uffdgc-bench: bdwgc not found: --compare bdw rows will be skipped "
                 "(apt-get install libgc-dev, then re-run cmake)")
  unset(UGC_BDW_INCLUDE_DIR CACHE)
  unset(UGC_BDW_LIBRARY CACHE)
endif()
