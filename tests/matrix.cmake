# Extra CTest registrations: the integration tests once per backend (and per fault-delivery
# mode for the concurrent backends), the two-thread random-graph variant, and the bench
# smoke test. The two-thread random-graph runs must reach at least 2,000 checked
# collections (digest + verifier + shadow walk each) with every backend and delivery mode:
# 1000 seeds x 5 rounds / 2 threads = 2,500, about 3-5 s each here. A backend this
# kernel or build cannot offer makes the test exit 77 with the reason (CTest: Skipped), never pass.
#
# Extend UGC_MATRIX_BACKENDS as backends land (sigsegv minor move).
set(UGC_MATRIX_BACKENDS stw copy CACHE STRING "Backends the integration tests run on")

function(ugc_matrix_test name exe env)
  add_test(NAME ${name} COMMAND ${exe})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}" SKIP_RETURN_CODE 77
                       TIMEOUT 300 LABELS "integration;matrix")
endfunction()

if(TARGET test_random_graph)
  # The default run of test_random_graph is single-threaded; this one uses two mutators.
  ugc_matrix_test(integration/random_graph_mt test_random_graph
                  "UGC_TEST_THREADS=2;UGC_TEST_SEEDS=1000;UGC_TEST_MIN_COLLECTIONS=2000")
endif()

foreach(backend ${UGC_MATRIX_BACKENDS})
  set(deliveries default)
  if(NOT backend STREQUAL "stw")
    list(APPEND deliveries thread)
  endif()
  foreach(delivery ${deliveries})
    set(env "UFFDGC_BACKEND=${backend}")
    set(suffix "${backend}")
    if(delivery STREQUAL "thread")
      list(APPEND env "UFFDGC_DELIVERY=thread")
      set(suffix "${backend},thread")
    endif()
    if(TARGET test_random_graph)
      ugc_matrix_test("integration/random_graph[${suffix}]" test_random_graph "${env}")
      ugc_matrix_test("integration/random_graph_mt[${suffix}]" test_random_graph
                      "${env};UGC_TEST_THREADS=2;UGC_TEST_SEEDS=1000;UGC_TEST_MIN_COLLECTIONS=2000")
    endif()
    if(TARGET test_embedding)
      ugc_matrix_test("integration/embedding[${suffix}]" test_embedding "${env}")
    endif()
    if(TARGET test_gcbench)
      ugc_matrix_test("integration/gcbench[${suffix}]" test_gcbench "${env}")
    endif()
    # The stress tests run on `copy` by default (tests/stress/test_*.c); here the others.
    if(NOT suffix STREQUAL "copy")
      foreach(stress test_compaction_faults test_compaction_threads test_syscall_heap
                     test_fork_loop)
        if(TARGET ${stress})
          ugc_matrix_test("stress/${stress}[${suffix}]" ${stress} "${env}")
        endif()
      endforeach()
    endif()
  endforeach()
endforeach()

# The copy backend's own stress tests once more with the handler-thread delivery (the
# default runs use SIGBUS delivery; these tests choose the copy backend themselves).
foreach(stress test_fault_injection test_raw_clone test_stray_window test_inpause_fallback)
  if(TARGET ${stress})
    ugc_matrix_test("stress/${stress}[copy,thread]" ${stress} "UFFDGC_DELIVERY=thread")
  endif()
endforeach()

# fork() with another attached thread, in the child with the handler-thread delivery: the
# child's new threads reuse the other thread's stack.
if(TARGET test_runtime_fork)
  ugc_matrix_test("unit/test_runtime_fork[copy,thread]" test_runtime_fork
                  "UFFDGC_BACKEND=copy;UFFDGC_DELIVERY=thread")
endif()

# bench/smoke: every workload on every backend at --scale 1 with --verify (compact on
# 128 MiB, both delivery modes); the --json output must hold every key docs/benchmarks.md
# promises. About 30 s here.
find_package(Python3 COMPONENTS Interpreter QUIET)
if(TARGET uffdgc-bench AND Python3_Interpreter_FOUND)
  add_test(NAME bench/smoke
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/bench_smoke.py
                   $<TARGET_FILE:uffdgc-bench> ${CMAKE_CURRENT_BINARY_DIR}/bench-smoke.json)
  set_tests_properties(bench/smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                       LABELS "bench")
endif()
