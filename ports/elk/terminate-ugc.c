/* terminate-ugc.c: Elk's terminators on uffdgc finalization (ports/elk/apply.sh installs it
 * as src/terminate.c). Same interface as Elk's terminate.c: Register_Object,
 * Deregister_Object, Find_Object, Terminate_Group, Terminate_Type, Call_Terminators.
 *
 * Elk keeps a list of WEAK_NODEs, each naming an object and the function that releases what
 * the object holds outside the heap (a FILE *, a regex). Its collectors test each node's
 * object after a collection. Here the node's `obj.data` is the slot of a uffdgc finalizer
 * registration: the collector keeps it up to date when the object moves, and when the object
 * becomes unreachable it keeps it alive and queues the registration. Call_Terminators (an
 * after-GC hook, so outside the pause) drains the queue and calls the terminators, those of
 * non-leaders before those of leaders, as Elk's own does. While a node waits for its
 * terminator its slot is a global root, since the terminator gets the object.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>

#include <uffdgc.h>

#include "kernel.h"

extern ugc_heap *Elk_Ugc_Heap(void);
extern ugc_mutator *Elk_Ugc_Mutator(void);

static WEAK_NODE *first;

void Call_Terminators(void);

void Init_Terminate(void) {
  Register_After_GC(Call_Terminators);
}

static void **Node_Slot(WEAK_NODE *p) {
  return (void **)(void *)&p->obj.data;
}

void Register_Object(Object obj, GENERIC group, PFO term, int leader_flag) {
  WEAK_NODE *p;

  p = (WEAK_NODE *)Safe_Malloc(sizeof(*p));
  p->obj = obj;
  p->group = group;
  p->term = term;
  p->flags = leader_flag ? WK_LEADER : 0;
  p->next = first;
  first = p;
  ugc_finalizer_add(Elk_Ugc_Heap(), Node_Slot(p), p);
}

void Deregister_Object(Object obj) {
  WEAK_NODE *p, **pp;

  Disable_Interrupts;
  for (pp = &first; (p = *pp);) {
    if (EQ(p->obj, obj)) {
      *pp = p->next;
      ugc_finalizer_remove(Elk_Ugc_Heap(), Node_Slot(p));
      free((char *)p);
    } else
      pp = &p->next;
  }
  Enable_Interrupts;
}

/* Search for an object of a given type and group with a match function (called with the
 * object and the remaining arguments). Null when there is none. */
Object Find_Object(int type, GENERIC group, MATCHFUN match, ...) {
  WEAK_NODE *p;
  va_list args;

  va_start(args, match);
  for (p = first; p; p = p->next) {
    if (TYPE(p->obj) != type || p->group != group)
      continue;
    if (match(p->obj, args)) {
      va_end(args);
      return p->obj;
    }
  }
  va_end(args);
  return Null;
}

/* Calls the terminators of list q (taken off `first`, slots rooted) and frees the nodes. */
static void Run_Terminators(WEAK_NODE *q) {
  while (q) {
    WEAK_NODE *tmp = q;
    if (q->term)
      (void)q->term(q->obj);
    q = q->next;
    ugc_global_root_remove(Elk_Ugc_Heap(), Node_Slot(tmp));
    free((char *)tmp);
  }
}

/* Takes the nodes `pick` selects off the list: their registrations end, their slots become
 * roots until their terminators have run. */
static WEAK_NODE *Take_Nodes(int (*pick)(WEAK_NODE *, void *), void *arg) {
  WEAK_NODE *p, **pp, *q = 0;

  for (pp = &first; (p = *pp);) {
    if (pick(p, arg)) {
      *pp = p->next;
      ugc_finalizer_remove(Elk_Ugc_Heap(), Node_Slot(p));
      ugc_global_root_add(Elk_Ugc_Heap(), Node_Slot(p));
      p->next = q;
      q = p;
    } else
      pp = &p->next;
  }
  return q;
}

static int In_Group(WEAK_NODE *p, void *group) {
  return p->group == (GENERIC)group && !(p->flags & WK_LEADER);
}

/* Terminate all objects belonging to the given group except leaders. */
void Terminate_Group(GENERIC group) {
  Disable_Interrupts;
  Run_Terminators(Take_Nodes(In_Group, group));
  Enable_Interrupts;
}

static int Of_Type(WEAK_NODE *p, void *type) {
  return TYPE(p->obj) == *(int *)type;
}

/* Terminate all objects of a given type. */
void Terminate_Type(int type) {
  Disable_Interrupts;
  Run_Terminators(Take_Nodes(Of_Type, &type));
  Enable_Interrupts;
}

typedef struct {
  WEAK_NODE *members, *leaders, **leaders_tail;
} Unreachable;

/* One queued registration: the node's object became unreachable. */
static void Queue_Node(ugc_mutator *mutator, void *obj, void **slot, void *cookie, void *data) {
  Unreachable *u = data;
  WEAK_NODE *p = cookie, **pp;

  (void)mutator;
  (void)obj;
  (void)slot;
  for (pp = &first; *pp && *pp != p; pp = &(*pp)->next)
    ;
  if (!*pp)
    Panic("terminator queued for an object that is not registered");
  *pp = p->next;
  ugc_global_root_add(Elk_Ugc_Heap(), Node_Slot(p));
  if (p->flags & WK_LEADER) {
    p->next = 0;
    *u->leaders_tail = p;
    u->leaders_tail = &p->next;
  } else {
    p->next = u->members;
    u->members = p;
  }
}

/* The after-GC hook: terminators of the objects that became unreachable, leaders last. */
void Call_Terminators(void) {
  Unreachable u = {0, 0, 0};

  u.leaders_tail = &u.leaders;
  Disable_Interrupts;
  ugc_finalizers_drain(Elk_Ugc_Mutator(), Queue_Node, &u);
  *u.leaders_tail = 0;
  Run_Terminators(u.members);
  Run_Terminators(u.leaders);
  Enable_Interrupts;
}
