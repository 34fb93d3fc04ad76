/* Configuration resolution for ugc_heap_create. */
#ifndef UGC_RUNTIME_CONFIG_H
#define UGC_RUNTIME_CONFIG_H

#include "uffdgc.h"

/* Applies the environment (UFFDGC_*) and defaults to *config and validates it.
 * 0, or -1 with *error naming the bad variable or field. */
int ugc_config_resolve(ugc_config *config, ugc_error *error);

#endif
