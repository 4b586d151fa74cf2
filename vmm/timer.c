/* timer: a sorted singly linked list; device models arm few timers, so O(n) insertion is fine. */
#include "timer.h"

#include <time.h>

uint64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void timer_init(struct vm_timer *t, void (*cb)(void *, uint64_t), void *opaque)
{
    *t = (struct vm_timer){.deadline_ns = TIMER_NEVER, .cb = cb, .opaque = opaque};
}

void timer_del(struct timer_list *list, struct vm_timer *t)
{
    if (!t->armed) return;
    for (struct vm_timer **pp = &list->head; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->next = NULL;
    t->armed = false;
    t->deadline_ns = TIMER_NEVER;
}

void timer_mod(struct timer_list *list, struct vm_timer *t, uint64_t deadline_ns)
{
    timer_del(list, t);
    if (deadline_ns == TIMER_NEVER) return;
    struct vm_timer **pp = &list->head;
    while (*pp && (*pp)->deadline_ns <= deadline_ns) pp = &(*pp)->next;
    t->deadline_ns = deadline_ns;
    t->next = *pp;
    t->armed = true;
    *pp = t;
}

int timers_run(struct timer_list *list, uint64_t now_ns)
{
    int fired = 0;
    while (list->head && list->head->deadline_ns <= now_ns) {
        struct vm_timer *t = list->head;
        list->head = t->next;
        t->next = NULL;
        t->armed = false;
        t->deadline_ns = TIMER_NEVER;
        t->cb(t->opaque, now_ns); /* may re-arm t */
        fired++;
    }
    return fired;
}

uint64_t timers_next_deadline(const struct timer_list *list)
{
    return list->head ? list->head->deadline_ns : TIMER_NEVER;
}
