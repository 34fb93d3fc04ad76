# uffdgc-bench: the workloads live in bench/ (one file each) and are compiled into the tool.
# bdwgc variants of gcbench and frag are built from the same sources with BENCH_BDW when
# libgc-dev is installed and UGC_WITH_BDW is ON (the default). Without it the bdw rows are
# skipped with a message. A libgc-dev installed after a configure that did not find it is
# picked up by the next `make`: the system include directory is then a configure
# dependency, and installing the package changes it.
set(UGC_BENCH_DIR ${PROJECT_SOURCE_DIR}/bench)
set(UGC_BENCH_SOURCES
  ${UGC_BENCH_DIR}/common.c ${UGC_BENCH_DIR}/hist.c
  ${UGC_BENCH_DIR}/workloads.c ${UGC_BENCH_DIR}/shim_ugc.c
  ${UGC_BENCH_DIR}/gcbench.c ${UGC_BENCH_DIR}/binarytrees.c ${UGC_BENCH_DIR}/frag.c
  ${UGC_BENCH_DIR}/latency.c ${UGC_BENCH_DIR}/mt.c ${UGC_BENCH_DIR}/cold.c
  ${UGC_BENCH_DIR}/compact.c)
target_sources(${tool} PRIVATE ${UGC_BENCH_SOURCES})
target_include_directories(${tool} PRIVATE ${UGC_BENCH_DIR} ${dir})

option(UGC_WITH_BDW "Build uffdgc-bench's bdwgc comparison when libgc-dev is installed" ON)
if(UGC_WITH_BDW)
  find_path(UGC_BDW_INCLUDE_DIR gc.h PATH_SUFFIXES gc)
  find_library(UGC_BDW_LIBRARY gc)
endif()
if(UGC_WITH_BDW AND UGC_BDW_INCLUDE_DIR AND UGC_BDW_LIBRARY)
  message(STATUS "uffdgc-bench: bdwgc found (${UGC_BDW_LIBRARY}): --compare bdw enabled")
  add_library(uffdgc_bench_bdw OBJECT
    ${UGC_BENCH_DIR}/shim_bdw.c ${UGC_BENCH_DIR}/gcbench.c ${UGC_BENCH_DIR}/frag.c)
  target_compile_definitions(uffdgc_bench_bdw PRIVATE BENCH_BDW=1)
  target_include_directories(uffdgc_bench_bdw PRIVATE ${UGC_BENCH_DIR} ${PROJECT_SOURCE_DIR}/src
                             ${UGC_BDW_INCLUDE_DIR})
  target_sources(${tool} PRIVATE $<TARGET_OBJECTS:uffdgc_bench_bdw>)
  target_compile_definitions(${tool} PRIVATE BENCH_HAVE_BDW=1)
  target_link_libraries(${tool} PRIVATE ${UGC_BDW_LIBRARY})
elseif(NOT UGC_WITH_BDW)
  message(STATUS "uffdgc-bench: UGC_WITH_BDW=OFF: --compare bdw rows will be skipped")
else()
  message(STATUS "uffdgc-bench: bdwgc not found: --compare bdw rows will be skipped "
                 "(apt-get install libgc-dev, then make again)")
  unset(UGC_BDW_INCLUDE_DIR CACHE)
  unset(UGC_BDW_LIBRARY CACHE)
  foreach(include_dir ${CMAKE_C_IMPLICIT_INCLUDE_DIRECTORIES})
    if(IS_DIRECTORY ${include_dir} AND include_dir MATCHES "^/usr(/local)?/include$")
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${include_dir})
    endif()
  endforeach()
endif()
