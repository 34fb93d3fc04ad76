# uffdgc-probe asks the backend registry which backends are implemented, but only once
# src/backend/registry.c defines ugc_backend_is_implemented(); until then it says "unknown".
set(UGC_PROBE_REGISTRY ${PROJECT_SOURCE_DIR}/src/backend/registry.c)
if(EXISTS ${UGC_PROBE_REGISTRY})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${UGC_PROBE_REGISTRY})
  file(STRINGS ${UGC_PROBE_REGISTRY} UGC_PROBE_REGISTRY_HITS REGEX "ugc_backend_is_implemented[ \t]*\\(")
  if(UGC_PROBE_REGISTRY_HITS)
    target_compile_definitions(${tool} PRIVATE UGC_HAVE_BACKEND_REGISTRY=1)
  endif()
endif()
