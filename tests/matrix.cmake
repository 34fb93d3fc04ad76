# Extra CTest registrations: the integration tests once per backend (and per fault-delivery
# mode for the concurrent backends), the two-thread random-graph variant, and the bench
# smoke test. The random-graph runs of the matrix have the library's verifier on
# (UFFDGC_VERIFY=1, which leaves concurrent compactions to the mutators) and must reach at
# least 5,000 checked collections single-threaded (1000 seeds x 5) and 2,000 with two
# threads (1000 seeds x 5 rounds / 2 threads = 2,500), each checked with two digests,
# ugc_verify and shadow walks during and after its compaction; on `copy` the test fails
# unless mutators built pages during them (it prints how many), and so on `move`. About 1-4 s each here. A
# backend this kernel or build cannot offer makes the test exit 77 with the reason (CTest:
# Skipped), never pass. tests/fuzz_random_graph.sh runs the same over every mode at once.
#
# UGC_MATRIX_BACKENDS holds every backend. The handler-thread delivery mode exists for the
# userfaultfd backends only (copy, move, minor; sigsegv faults always come by signal).
set(UGC_MATRIX_BACKENDS stw copy move sigsegv minor CACHE STRING "Backends the integration tests run on")

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
  if(NOT backend STREQUAL "stw" AND NOT backend STREQUAL "sigsegv")
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
      ugc_matrix_test("integration/random_graph[${suffix}]" test_random_graph
                      "${env};UFFDGC_VERIFY=1;UGC_TEST_SEEDS=1000;UGC_TEST_MIN_COLLECTIONS=5000")
      ugc_matrix_test("integration/random_graph_mt[${suffix}]" test_random_graph
                      "${env};UFFDGC_VERIFY=1;UGC_TEST_THREADS=2;UGC_TEST_SEEDS=1000;UGC_TEST_MIN_COLLECTIONS=2000")
    endif()
    if(TARGET test_random_graph)
      # Marking inside the pause (UFFDGC_CONCURRENT_MARK=0) stays a supported mode (300 seeds:
      # the concurrent-marking runs above and CI's fuzz section carry the 2,000-collection
      # checks).
      ugc_matrix_test("integration/random_graph_mt[${suffix},stw-mark]" test_random_graph
                      "${env};UFFDGC_CONCURRENT_MARK=0;UFFDGC_VERIFY=1;UGC_TEST_THREADS=2;UGC_TEST_SEEDS=300;UGC_TEST_MIN_COLLECTIONS=600")
    endif()
    if(TARGET test_mark_races)
      ugc_matrix_test("stress/test_mark_races_mt[${suffix}]" test_mark_races
                      "${env};UGC_TEST_THREADS=2")
    endif()
    if(TARGET test_embedding)
      ugc_matrix_test("integration/embedding[${suffix}]" test_embedding "${env}")
    endif()
    if(TARGET test_tag_rule)
      ugc_matrix_test("integration/tag_rule[${suffix}]" test_tag_rule "${env}")
    endif()
    if(TARGET test_reference_offset)
      ugc_matrix_test("integration/reference_offset[${suffix}]" test_reference_offset "${env}")
    endif()
    if(TARGET test_pin)
      ugc_matrix_test("integration/pin[${suffix}]" test_pin "${env}")
    endif()
    if(TARGET test_untouched)
      ugc_matrix_test("integration/untouched[${suffix}]" test_untouched "${env}")
      ugc_matrix_test("integration/untouched[${suffix},default]" test_untouched
                      "${env};UGC_TEST_UNTOUCHED=2")
    endif()
    if(TARGET test_compact_threads)
      ugc_matrix_test("integration/compact_threads[${suffix}]" test_compact_threads "${env}")
    endif()
    if(TARGET test_collect_assist)
      ugc_matrix_test("integration/collect_assist[${suffix}]" test_collect_assist "${env}")
    endif()
    if(TARGET test_huge_pages)
      ugc_matrix_test("integration/huge_pages[${suffix}]" test_huge_pages "${env}")
      ugc_matrix_test("integration/huge_pages[${suffix},no_thp]" test_huge_pages
                      "${env};UFFDGC_DISABLE=thp")
    endif()
    if(TARGET test_pinned_large)
      ugc_matrix_test("integration/pinned_large[${suffix}]" test_pinned_large "${env}")
    endif()
    if(TARGET test_runtime_identity)
      ugc_matrix_test("unit/test_runtime_identity[${suffix}]" test_runtime_identity "${env}")
    endif()
    if(TARGET test_hooks)
      ugc_matrix_test("integration/hooks[${suffix}]" test_hooks "${env}")
    endif()
    if(TARGET test_weak_refs)
      ugc_matrix_test("integration/weak_refs[${suffix}]" test_weak_refs "${env}")
      ugc_matrix_test("integration/weak_refs[${suffix},stw-mark]" test_weak_refs
                      "${env};UFFDGC_CONCURRENT_MARK=0")
    endif()
    if(TARGET test_events)
      ugc_matrix_test("integration/events[${suffix}]" test_events "${env}")
    endif()
    if(TARGET test_stats_snapshot)
      ugc_matrix_test("integration/stats_snapshot[${suffix}]" test_stats_snapshot "${env}")
    endif()
    if(TARGET test_gcbench)
      ugc_matrix_test("integration/gcbench[${suffix}]" test_gcbench "${env}")
    endif()
    # The stress tests run on `copy` by default (tests/stress/test_*.c), at full length; here
    # the others, the three longest cut to about a third (a 16 MiB array instead of 64, 150
    # rounds of races instead of 400, 30 pinned-I/O collections instead of 60): together they
    # took 20 minutes of test time, about half of `make test` on 2 CPUs.
    if(NOT suffix STREQUAL "copy")
      foreach(stress test_compaction_faults test_compaction_threads test_syscall_heap
                     test_mark_races test_fork_loop test_weak_races
                     test_alloc_between_pauses test_update_pages test_pin_between_pauses
                     test_pin_io)
        set(stress_env "${env}")
        if(stress STREQUAL "test_update_pages")
          list(APPEND stress_env "UGC_TEST_HUGE_MIB=16")
        elseif(stress STREQUAL "test_mark_races")
          list(APPEND stress_env "UGC_TEST_ITERATIONS=150")
        elseif(stress STREQUAL "test_pin_io")
          list(APPEND stress_env "UGC_TEST_ITERATIONS=30")
        endif()
        if(TARGET ${stress})
          ugc_matrix_test("stress/${stress}[${suffix}]" ${stress} "${stress_env}")
        endif()
      endforeach()
    endif()
  endforeach()
endforeach()

# minor: a page mapped during a compaction that loses its page-table entry again (reclaim
# swaps shmem out) faults as MINOR on a page no build will map again; the fault path maps it
# itself. Without that, the mutator spun on the fault until the compaction ended (about 600
# stalls per page it built instead of one). SIGBUS delivery and one thread: see
# minor.drop_mapped in src/os/inject.h.
if(TARGET test_random_graph AND "minor" IN_LIST UGC_MATRIX_BACKENDS)
  ugc_matrix_test("integration/random_graph[minor,drop_mapped]" test_random_graph
                  "UFFDGC_BACKEND=minor;UFFDGC_INJECT=minor.drop_mapped;UFFDGC_VERIFY=1;UGC_TEST_SEEDS=200;UGC_TEST_MIN_COLLECTIONS=1000;UGC_TEST_MAX_STALLS_PER_PAGE=10")
endif()

# move with four GC threads: concurrent UFFDIO_MOVEs out of one from-space huge page (the
# lock in backend/move.c; without it about one run in six aborted on EEXIST).
if(TARGET test_compaction_faults AND "move" IN_LIST UGC_MATRIX_BACKENDS)
  ugc_matrix_test("stress/test_compaction_faults[move,4gc]" test_compaction_faults
                  "UFFDGC_BACKEND=move;UFFDGC_GC_THREADS=4")
endif()

# move's whole 2 MiB chunks with the handler-thread delivery, and with two compaction
# threads (a pending chunk may then wait for another thread to build the next chunk's
# first page).
if(TARGET test_move_huge AND "move" IN_LIST UGC_MATRIX_BACKENDS)
  ugc_matrix_test("integration/test_move_huge[thread]" test_move_huge "UFFDGC_DELIVERY=thread")
  ugc_matrix_test("integration/test_move_huge[4gc]" test_move_huge "UFFDGC_GC_THREADS=4")
endif()
# Whole 2 MiB chunks of slid pages built into recycled regions, the same two variants.
if(TARGET test_move_huge_slid AND "move" IN_LIST UGC_MATRIX_BACKENDS)
  ugc_matrix_test("integration/test_move_huge_slid[thread]" test_move_huge_slid
                  "UFFDGC_DELIVERY=thread")
  ugc_matrix_test("integration/test_move_huge_slid[4gc]" test_move_huge_slid "UFFDGC_GC_THREADS=4")
endif()

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

# The resolved settings with huge pages disabled (read once per process: a run of its own).
if(TARGET test_runtime_heap_config)
  ugc_matrix_test("unit/test_runtime_heap_config[no_thp]" test_runtime_heap_config
                  "UFFDGC_DISABLE=thp")
endif()

# Memory kept between cycles on the move backend too (the default run is copy's).
if(TARGET test_backend_retain)
  ugc_matrix_test("unit/test_backend_retain[move]" test_backend_retain "UFFDGC_BACKEND=move")
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
  # bench/options: paths checked before the runs, --heap sizes as the library's, the
  # UFFDGC_BACKEND / UFFDGC_HEAP_MAX defaults and notes. A few seconds.
  add_test(NAME bench/options
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/bench_options.py
                   $<TARGET_FILE:uffdgc-bench> ${CMAKE_CURRENT_BINARY_DIR}/bench-options)
  set_tests_properties(bench/options PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300
                       LABELS "bench")
  # bench/table: legend, best backend per workload (against the JSON), plain skip reasons.
  add_test(NAME bench/table
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/bench_table.py
                   $<TARGET_FILE:uffdgc-bench> ${CMAKE_CURRENT_BINARY_DIR}/bench-table.json)
  set_tests_properties(bench/table PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                       LABELS "bench")
  # bench/mmu: the pause timeline holds every pause, the MMU recomputed independently.
  add_test(NAME bench/mmu
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/bench_mmu.py
                   $<TARGET_FILE:uffdgc-bench> ${CMAKE_CURRENT_BINARY_DIR}/bench-mmu.json)
  set_tests_properties(bench/mmu PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                       LABELS "bench")
endif()

# tools/probe_output: uffdgc-probe's backend lines and its auto pick agree (table and JSON).
if(TARGET uffdgc-probe AND Python3_Interpreter_FOUND)
  add_test(NAME tools/probe_output
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/probe_output.py
                   $<TARGET_FILE:uffdgc-probe>)
  set_tests_properties(tools/probe_output PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120
                       LABELS "tools")
endif()

# integration/layers: every include in src/ follows the layer list of docs/design.md.
if(Python3_Interpreter_FOUND)
  add_test(NAME integration/layers
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/layers.py
                   ${PROJECT_SOURCE_DIR}/src)
  set_tests_properties(integration/layers PROPERTIES TIMEOUT 60 LABELS "integration")
endif()

# integration/readme_example: the README's C block, compiled as printed against this build's
# shared library, prints collection trace lines with UFFDGC_TRACE=1 on every backend that
# can run here; every build/ path the README names exists.
if(Python3_Interpreter_FOUND)
  set(UGC_README_CFLAGS -std=gnu11 -Wall -Wextra -Werror)
  if(UGC_SANITIZE)
    list(APPEND UGC_README_CFLAGS -fsanitize=${UGC_SANITIZE})
  endif()
  add_test(NAME integration/readme_example
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/readme_example.py
                   ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/include
                   $<TARGET_FILE_DIR:uffdgc_shared> ${PROJECT_BINARY_DIR} ${CMAKE_C_COMPILER}
                   ${UGC_README_CFLAGS})
  set_tests_properties(integration/readme_example PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300
                       LABELS "integration")
endif()

# Finalization on every backend and delivery mode, with and without concurrent marking.
if(TARGET test_finalize)
  foreach(backend ${UGC_MATRIX_BACKENDS})
    set(deliveries default)
    if(NOT backend STREQUAL "stw" AND NOT backend STREQUAL "sigsegv")
      list(APPEND deliveries thread)
    endif()
    foreach(delivery ${deliveries})
      set(env "UFFDGC_BACKEND=${backend}")
      set(suffix "${backend}")
      if(delivery STREQUAL "thread")
        list(APPEND env "UFFDGC_DELIVERY=thread")
        set(suffix "${backend},thread")
      endif()
      ugc_matrix_test("integration/finalize[${suffix}]" test_finalize "${env};UFFDGC_VERIFY=1")
      ugc_matrix_test("integration/finalize[${suffix},stw-mark]" test_finalize
                      "${env};UFFDGC_VERIFY=1;UFFDGC_CONCURRENT_MARK=0")
    endforeach()
  endforeach()
endif()

# The sigsegv backend short of mappings without root: the 40th mprotect fails with ENOMEM
# (tests/stress/test_sigsegv_map_count.c lowers vm.max_map_count itself when it is root).
if(TARGET test_sigsegv_map_count)
  ugc_matrix_test("stress/test_sigsegv_map_count[inject]" test_sigsegv_map_count
                  "UFFDGC_INJECT=sigsegv.mprotect:40")
  # As root it lowers the system-wide vm.max_map_count for a few seconds: no other test may
  # run then (a process of theirs with more mappings would get ENOMEM).
  set_tests_properties(stress/test_sigsegv_map_count PROPERTIES RUN_SERIAL TRUE)
endif()

# The hand-off around pinned objects' pages failing after its first stretch moved, then its
# registration, then its page states (src/os/inject.h): each time the heap goes back whole
# (backend/handoff.c) and the cycle compacts in the pause; no write into a pinned object
# may be lost on the way.
foreach(backend copy move)
  if(TARGET test_pin_io AND "${backend}" IN_LIST UGC_MATRIX_BACKENDS)
    ugc_matrix_test("stress/test_pin_io[${backend},undo]" test_pin_io
                    "UFFDGC_BACKEND=${backend};UGC_TEST_ITERATIONS=20;UFFDGC_INJECT=handoff.held_stretch:2,copy.register:5,copy.page_states:8")
  endif()
endforeach()

# System calls into ugc_alloc_pinned buffers (the non-moving space) while its references are
# updated after the pause: with thread delivery its pages leave it in the pause and come back
# built (backend/copy_update.c). copy.update_slow_handoff holds the hand-off 2 ms after they
# left; a write into that moment must wait for its page, never be lost (before the range was
# registered ahead of the move, such runs lost 2-6 transfers in 30 cycles). The default
# delivery keeps the space out of that update (its system calls would fail): no EFAULT.
foreach(backend copy move minor)
  if(TARGET test_pin_io AND "${backend}" IN_LIST UGC_MATRIX_BACKENDS)
    ugc_matrix_test("stress/test_pin_io[${backend},thread,nonmoving]" test_pin_io
                    "UFFDGC_BACKEND=${backend};UFFDGC_DELIVERY=thread;UGC_PIN_IO_SPACE=nonmoving;UGC_TEST_ITERATIONS=30;UFFDGC_INJECT=copy.update_slow_handoff")
    ugc_matrix_test("stress/test_pin_io[${backend},nonmoving]" test_pin_io
                    "UFFDGC_BACKEND=${backend};UGC_PIN_IO_SPACE=nonmoving;UGC_TEST_ITERATIONS=20")
  endif()
endforeach()

# The plan extended between the pauses of concurrent marking in rounds of 3 pages
# (plan.small_rounds in src/os/inject.h): many round boundaries per cycle, each of which a
# wrong extension would mis-forward across (digests and the verifier check).
foreach(backend copy move)
  if(TARGET test_alloc_between_pauses AND "${backend}" IN_LIST UGC_MATRIX_BACKENDS)
    ugc_matrix_test("stress/test_alloc_between_pauses[${backend},small_rounds]"
                    test_alloc_between_pauses
                    "UFFDGC_BACKEND=${backend};UFFDGC_INJECT=plan.small_rounds")
    # A mutator idle in a blocking region with a TLAB open below the bursts: the rounds
    # retire it for it, or they extend nothing.
    ugc_matrix_test("stress/test_alloc_between_pauses[${backend},idle]"
                    test_alloc_between_pauses
                    "UFFDGC_BACKEND=${backend};UGC_TEST_IDLE_MUTATOR=1")
  endif()
endforeach()
