/* heap-ugc.c: Elk's heap on uffdgc. Included by Elk's src/heap.c in place of heap-sc.c and
 * heap-gen.c (ports/elk/apply.sh patches the #include), so it sees heap.c's statics
 * (Global_GC_Obj, the before/after-GC hook lists) and uses its Visit_GC_List / Visit_Wind.
 *
 * Mapping (docs/embedding-elk.md explains each choice):
 *  - every Elk object is a uffdgc object, one uffdgc type per Elk type, registered the first
 *    time an object of that Elk type is allocated;
 *  - an Elk Object is {int64 data; int tag}: only the tag says whether `data` is a pointer,
 *    so every type with references is CUSTOM and its trace callback reads the tag of each
 *    field before reporting `data` as a slot (a fixnum is never taken for a reference);
 *  - Elk's roots (GC_Link nodes on the C stack, Global_GC_Link variables, the dynamic-wind
 *    list) are reported by one root enumerator;
 *  - Visit(), which extension types' visit functions call, reports to the tracer of the
 *    trace callback running on this thread (a thread-local: GC threads and signal handlers
 *    trace at the same time);
 *  - a continuation keeps a copy of the C stack whose GC_Link nodes are found through
 *    `delta` (copy address - original address): the trace callback computes delta from
 *    where it reads the object, and Elk_Control_Delta gives Elk the delta of where the
 *    continuation is now (it may have moved since it was made);
 *  - before-GC hooks run from the event listener's cycle_start (Elk's only ones are in its
 *    X libraries and do not touch the heap); after-GC hooks (terminators: see
 *    terminate-ugc.c) run outside the pause, at the end of the allocation that collected.
 */
#include <stdlib.h>
#include <string.h>

#include <uffdgc.h>

/* Cons() in list.c bumps Hp up to Heap_End inline with the stop-and-copy heap: both stay
 * NULL here, so it always calls Alloc_Object. dump-vanilla.c names the others. */
extern void Uncatchable_Error(char *);

char *Hp, *Heap_Start, *Heap_End, *Free_Start, *Free_End;

#define ELK_UGC_MAX_TYPES 1024

static ugc_heap *Ugc_Heap;
static ugc_mutator *Ugc_Mutator;
static ugc_type_id Ugc_Type_Of[ELK_UGC_MAX_TYPES]; /* Elk type -> uffdgc type, 0 = none yet */
static int Elk_Type_Of[ELK_UGC_MAX_TYPES + 1];     /* uffdgc type -> Elk type */
/* Copies of Types[t].haspointer and .visit: trace callbacks run on GC threads and in signal
 * handlers, while Define_Type may grow the Types array. */
static char Elk_Has_Pointer[ELK_UGC_MAX_TYPES];
static int (*Elk_Visit_Fn[ELK_UGC_MAX_TYPES])(Object *, int (*)(Object *));

static __thread ugc_tracer *Current_Tracer;
static volatile int Collected_Since_Hooks;

/* For terminate-ugc.c. */
ugc_heap *Elk_Ugc_Heap(void) {
  return Ugc_Heap;
}

ugc_mutator *Elk_Ugc_Mutator(void) {
  return Ugc_Mutator;
}

/* Reports *p to the current tracer if it holds a reference. Called from trace callbacks,
 * the root enumerator and extension types' visit functions. */
int Visit(register Object *p) {
  int t = TYPE(*p);
  if (t < 0 || t >= ELK_UGC_MAX_TYPES || !Elk_Has_Pointer[t] || !Current_Tracer)
    return 0;
  ugc_trace_slot(Current_Tracer, (void **)(void *)&p->data);
  return 0;
}

/* The delta of a continuation at the address it has now: Internal_Call_CC copied the C
 * stack from a fixed place (just below stkbase when the stack grows down) into cp->stack. */
static intptr_t Control_Delta_At(const struct S_Control *cp) {
  char *from = Stack_Grows_Down ? stkbase - cp->size : stkbase;
  return (intptr_t)((const char *)cp->stack - from);
}

intptr_t Elk_Control_Delta(Object control) {
  struct S_Control *cp = CONTROL(control);
  cp->delta = Control_Delta_At(cp);
  return cp->delta;
}

static void Trace_Fields(void *obj, int t) {
  switch (t) {
  case T_Symbol: {
    struct S_Symbol *s = obj;
    Visit(&s->value);
    Visit(&s->next);
    Visit(&s->name);
    Visit(&s->plist);
    return;
  }
  case T_Pair:
  case T_Environment: {
    struct S_Pair *p = obj;
    Visit(&p->car);
    Visit(&p->cdr);
    return;
  }
  case T_Vector: {
    struct S_Vector *v = obj;
    unsigned int i;
    for (i = 0; i < v->size; i++)
      Visit(&v->data[i]);
    return;
  }
  case T_Compound: {
    struct S_Compound *c = obj;
    Visit(&c->closure);
    Visit(&c->env);
    Visit(&c->name);
    return;
  }
  case T_Control_Point: {
    struct S_Control *cp = obj;
    intptr_t delta = Control_Delta_At(cp);
    Visit(&cp->env);
    Visit(&cp->memsave);
    Visit(&cp->gcsave);
    /* The GC_Link nodes and wind records saved with the stack: read in this copy. */
    Visit_GC_List(cp->gclist, delta);
    Visit_Wind(cp->firstwind, delta);
    return;
  }
  case T_Promise: {
    struct S_Promise *p = obj;
    Visit(&p->env);
    Visit(&p->thunk);
    return;
  }
  case T_Port:
    Visit(&((struct S_Port *)obj)->name);
    return;
  case T_Autoload: {
    struct S_Autoload *a = obj;
    Visit(&a->files);
    Visit(&a->env);
    return;
  }
  case T_Macro: {
    struct S_Macro *m = obj;
    Visit(&m->body);
    Visit(&m->name);
    return;
  }
  default:
    if (Elk_Visit_Fn[t]) {
      /* Extension visit functions take the Object that refers to the object. */
      Object self;
      SET(self, t, (intptr_t)obj);
      Elk_Visit_Fn[t](&self, Visit);
    }
  }
}

static void Trace_Object(void *obj, size_t payload_bytes, ugc_tracer *tracer) {
  ugc_tracer *outer = Current_Tracer; /* a signal handler may trace inside a trace */
  (void)payload_bytes;
  Current_Tracer = tracer;
  Trace_Fields(obj, Elk_Type_Of[ugc_object_type(obj)]);
  Current_Tracer = outer;
}

static void Enumerate_Roots(ugc_tracer *tracer, void *data) {
  ugc_tracer *outer = Current_Tracer;
  (void)data;
  Current_Tracer = tracer;
  Visit_GC_List(Global_GC_Obj, 0);
  Visit_GC_List(GC_List, 0);
  Visit_Wind(First_Wind, 0);
  Current_Tracer = outer;
}

static int Builtin_Has_Fields(int t) {
  switch (t) {
  case T_Symbol:
  case T_Pair:
  case T_Environment:
  case T_Vector:
  case T_Compound:
  case T_Control_Point:
  case T_Promise:
  case T_Port:
  case T_Autoload:
  case T_Macro:
    return 1;
  default:
    return 0;
  }
}

static ugc_type_id Ugc_Type(int t) {
  ugc_type_desc desc;
  ugc_error error;
  ugc_type_id id;

  if (t < 0 || t >= ELK_UGC_MAX_TYPES || t >= Num_Types)
    Panic("Alloc_Object: bad type");
  if (Ugc_Type_Of[t])
    return Ugc_Type_Of[t];
  if (Types[t].haspointer)
    Elk_Has_Pointer[t] = 1;
  Elk_Visit_Fn[t] = t > T_Macro ? Types[t].visit : 0;
  memset(&desc, 0, sizeof desc);
  desc.name = Types[t].name;
  if (Builtin_Has_Fields(t) || Elk_Visit_Fn[t]) {
    desc.layout = UGC_LAYOUT_CUSTOM;
    desc.trace = Trace_Object;
  } else {
    desc.layout = UGC_LAYOUT_LEAF;
  }
  id = ugc_type_register(Ugc_Heap, &desc, &error);
  if (id == 0 || id > ELK_UGC_MAX_TYPES)
    Fatal_Error("cannot register type %s with uffdgc: %s", Types[t].name, error.message);
  Elk_Type_Of[id] = t;
  Ugc_Type_Of[t] = id;
  return id;
}

/* ---- before/after-GC hooks through the event listener ---- */

static void On_Cycle_Start(void *data, uint64_t cycle) {
  (void)data;
  (void)cycle;
  Call_Before_GC();
}

static void On_Pause_Done(void *data, uint64_t cycle, uint64_t pause_ns) {
  (void)data;
  (void)cycle;
  (void)pause_ns;
  Collected_Since_Hooks = 1;
}

/* Runs the after-GC hooks once per batch of collections, outside the pause. */
static void Run_After_GC_Hooks(void) {
  if (!Collected_Since_Hooks || GC_In_Progress)
    return;
  Collected_Since_Hooks = 0;
  GC_In_Progress = 1;
  Call_After_GC();
  GC_In_Progress = 0;
}

static size_t Env_Size(const char *name, size_t fallback) {
  const char *value = getenv(name);
  return value && *value ? (size_t)strtoull(value, 0, 10) : fallback;
}

void Make_Heap(int size) {
  ugc_config config;
  ugc_error error;
  ugc_event_listener listener;

  /* Built-in pointer types, including those whose values are retagged rather than
   * allocated (List_To_Env makes an environment of a pair). */
  {
    static const int builtin[] = {T_Bignum,  T_Flonum, T_Symbol,    T_Pair,     T_Environment,
                                  T_String,  T_Vector, T_Primitive, T_Compound, T_Control_Point,
                                  T_Promise, T_Port,   T_Autoload,  T_Macro};
    unsigned i;
    for (i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
      Elk_Has_Pointer[builtin[i]] = 1;
  }
  ugc_config_init(&config);
  /* Elk's heap size (-h, in KBytes) is when the first collection comes: the trigger. The
   * environment's UFFDGC_HEAP_MAX still caps the whole heap. */
  config.heap_initial = Env_Size("ELK_UGC_HEAP_INITIAL_KB", (size_t)size) * 1024;
  /* Elk stores references with plain assignments (no write barrier): marking must not run
   * while Elk does. */
  config.concurrent_mark = 0;
  Ugc_Heap = ugc_heap_create(&config, &error);
  if (!Ugc_Heap)
    Fatal_Error("cannot create the uffdgc heap: %s", error.message);
  Ugc_Mutator = ugc_thread_attach(Ugc_Heap, &error);
  if (!Ugc_Mutator)
    Fatal_Error("cannot attach to the uffdgc heap: %s", error.message);
  /* Elk's initialisation is not GC-safe (its collectors refuse to collect before
   * Interpreter_Initialized: the heap must hold it). A reservation of Elk's default heap
   * size lets it allocate without reaching a safepoint, whatever the trigger. */
  if (!ugc_reserve(Ugc_Mutator, (size_t)(size > HEAP_SIZE ? size : HEAP_SIZE) * 1024))
    Fatal_Error("cannot reserve %d KBytes for Elk's initialisation", size);
  Collected_Since_Hooks = 0; /* the reservation may have collected the empty heap */
  ugc_root_enumerator_add(Ugc_Heap, Enumerate_Roots, 0);
  memset(&listener, 0, sizeof listener);
  listener.cycle_start = On_Cycle_Start;
  listener.pause_done = On_Pause_Done;
  ugc_set_event_listener(Ugc_Heap, &listener);
}

/* At exit: appends "backend collections verify-failures verified-collections" to the file
 * named by ELK_UGC_REPORT (ports/elk/port-elk.sh adds up the runs of `make check`). */
void Free_Heap(void) {
  const char *path = getenv("ELK_UGC_REPORT");
  FILE *out;
  ugc_stats stats;

  if (!Ugc_Heap || !path || !*path || !(out = fopen(path, "a")))
    return;
  ugc_stats_get(Ugc_Heap, &stats);
  fprintf(out, "%s %llu %llu %llu\n", ugc_heap_backend(Ugc_Heap), (unsigned long long)stats.cycles,
          (unsigned long long)stats.verify_failures, (unsigned long long)stats.verify_cycles);
  fclose(out);
}

Object Alloc_Object(int size, int type, int konst) {
  Object ret;
  void *p;
  GC_Node;

  if (GC_Debug)
    (void)P_Collect();
  p = ugc_alloc(Ugc_Mutator, Ugc_Type(type), (size_t)size);
  if (!p)
    Uncatchable_Error("Out of heap space");
  if (Collected_Since_Hooks && !Interpreter_Initialized)
    Fatal_Error("heap too small: a collection during initialisation (increase heap size)");
  SET(ret, type, (intptr_t)p);
  if (konst)
    SETCONST(ret);
  if (Collected_Since_Hooks && !GC_In_Progress) {
    GC_Link(ret);
    Run_After_GC_Hooks();
    GC_Unlink;
  }
  return ret;
}

Object P_Collect(void) {
  if (!Interpreter_Initialized)
    Fatal_Error("heap too small (increase heap size)");
  if (GC_In_Progress)
    Fatal_Error("GC while GC in progress");
  Disable_Interrupts;
  if (!GC_Debug && Var_Is_True(V_Garbage_Collect_Notifyp)) {
    Format(Standard_Output_Port, "[Garbage collecting... ", 23, 0, (Object *)0);
    (void)fflush(stdout);
  }
  ugc_collect(Ugc_Mutator, UGC_COLLECT_FULL);
  if (!GC_Debug && Var_Is_True(V_Garbage_Collect_Notifyp)) {
    Format(Standard_Output_Port, "done]~%", 7, 0, (Object *)0);
    (void)fflush(stdout);
  }
  Run_After_GC_Hooks();
  Enable_Interrupts;
  return Void;
}

Object Internal_GC_Status(int strat, int flags) {
  (void)strat;
  (void)flags;
  return Cons(Intern("uffdgc"), Cons(Intern(ugc_heap_backend(Ugc_Heap)), Null));
}
