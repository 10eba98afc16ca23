/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What HMM does, step by step, for tracefs (events/hmm/).
 *
 * The /proc/vmstat events say how much; these say which range, which page
 * and why. Each migration shows as its steps (collect, commit, finalize,
 * for a range or for device pages by frame number) with a summary each,
 * and as one event per entry that moved or did not: where it was, where it
 * went, or the reason it stayed, with the number of base pages it stands
 * for (512 for a 2 MiB entry). Summed over a run, the per-entry events give
 * the vmstat events exactly. Mirroring shows as one event per call of
 * hmm_range_fault(), with its passes and the faults it took. The CPU side
 * shows as faults on device-private entries, and device-exclusive grants
 * and revocations. Documentation/mm/hmm.rst, "Tracing HMM", lists them.
 *
 * Like every tracepoint, each costs a patched-out branch while disabled.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM hmm

#if !defined(_TRACE_HMM_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_HMM_H

#include <linux/mm_types.h>
#include <linux/tracepoint.h>

struct hmm_range;

#ifndef _TRACE_HMM_ENUMS
#define _TRACE_HMM_ENUMS
/* Why an entry of a migration did not move (hmm_migrate_skip). */
enum hmm_trace_skip {
	HMM_SKIP_LOCKED,	/* its lock was held: never collected */
	HMM_SKIP_PINNED,	/* pinned (FOLL_PIN) */
	HMM_SKIP_REFS,		/* references the core cannot account for */
	HMM_SKIP_ALLOC,		/* no usable destination from the driver */
	HMM_SKIP_RACED,		/* the entry changed during the migration */
};

/* Where the page of an entry lives (hmm_migrate_page). */
enum hmm_trace_mem {
	HMM_MEM_NONE,		/* an empty source: no page yet */
	HMM_MEM_SYSTEM,
	HMM_MEM_PRIVATE,	/* MEMORY_DEVICE_PRIVATE */
	HMM_MEM_COHERENT,	/* MEMORY_DEVICE_COHERENT */
};

/*
 * On while hmm_migrate_page or hmm_migrate_skip has a probe: the finalize
 * step, which emits both for its entries, tests this one branch instead of
 * one per event (mm/hmm_trace.c keeps it).
 */
DECLARE_STATIC_KEY_FALSE(hmm_trace_entries_key);
int hmm_trace_entries_reg(void);
void hmm_trace_entries_unreg(void);

#if defined(CONFIG_TRACEPOINTS) && !defined(NOTRACE)
static inline bool hmm_trace_entries_enabled(void)
{
	return static_branch_unlikely(&hmm_trace_entries_key);
}
#else
static inline bool hmm_trace_entries_enabled(void)
{
	return false;
}
#endif
#endif /* _TRACE_HMM_ENUMS */

TRACE_DEFINE_ENUM(HMM_SKIP_LOCKED);
TRACE_DEFINE_ENUM(HMM_SKIP_PINNED);
TRACE_DEFINE_ENUM(HMM_SKIP_REFS);
TRACE_DEFINE_ENUM(HMM_SKIP_ALLOC);
TRACE_DEFINE_ENUM(HMM_SKIP_RACED);
TRACE_DEFINE_ENUM(HMM_MEM_NONE);
TRACE_DEFINE_ENUM(HMM_MEM_SYSTEM);
TRACE_DEFINE_ENUM(HMM_MEM_PRIVATE);
TRACE_DEFINE_ENUM(HMM_MEM_COHERENT);

#define hmm_show_skip(why)					\
	__print_symbolic(why,					\
			 { HMM_SKIP_LOCKED, "locked" },		\
			 { HMM_SKIP_PINNED, "pinned" },		\
			 { HMM_SKIP_REFS, "refs" },		\
			 { HMM_SKIP_ALLOC, "alloc" },		\
			 { HMM_SKIP_RACED, "raced" })

#define hmm_show_mem(mem)					\
	__print_symbolic(mem,					\
			 { HMM_MEM_NONE, "none" },		\
			 { HMM_MEM_SYSTEM, "system" },		\
			 { HMM_MEM_PRIVATE, "private" },	\
			 { HMM_MEM_COHERENT, "coherent" })

/*
 * One call of hmm_range_fault(): the range and what it asked for, the walks
 * it took (a pass ends after faulting or waiting for a migration, and the
 * next resumes there), the pages it asked the CPU fault path for, and its
 * result.
 */
TRACE_EVENT(hmm_range_fault,
	    TP_PROTO(const struct hmm_range *range, unsigned int passes,
		     unsigned long faults, int ret),
	    TP_ARGS(range, passes, faults, ret),
	    TP_STRUCT__entry(__field(unsigned long, start)
			     __field(unsigned long, end)
			     __field(unsigned long, default_flags)
			     __field(unsigned long, pfn_flags_mask)
			     __field(unsigned int, passes)
			     __field(unsigned long, faults)
			     __field(int, ret)),
	    TP_fast_assign(__entry->start = range->start;
			   __entry->end = range->end;
			   __entry->default_flags = range->default_flags;
			   __entry->pfn_flags_mask = range->pfn_flags_mask;
			   __entry->passes = passes;
			   __entry->faults = faults;
			   __entry->ret = ret;),
	    TP_printk("start=%#lx end=%#lx default_flags=%#lx pfn_flags_mask=%#lx passes=%u faults=%lu ret=%d",
		      __entry->start, __entry->end, __entry->default_flags,
		      __entry->pfn_flags_mask, __entry->passes, __entry->faults,
		      __entry->ret)
);

/*
 * migrate_vma_setup() is done: of the @npages entries of [@start, @end),
 * the selected ones (MIGRATE_VMA_SELECT_* in @flags) now wait for the
 * driver: @pages base pages with a page, @empty base pages of empty slots,
 * @thp of them 2 MiB entries.
 */
TRACE_EVENT(hmm_migrate_vma_setup,
	    TP_PROTO(unsigned long start, unsigned long end,
		     unsigned long flags, unsigned long pages,
		     unsigned long empty, unsigned long thp),
	    TP_ARGS(start, end, flags, pages, empty, thp),
	    TP_STRUCT__entry(__field(unsigned long, start)
			     __field(unsigned long, end)
			     __field(unsigned long, flags)
			     __field(unsigned long, pages)
			     __field(unsigned long, empty)
			     __field(unsigned long, thp)),
	    TP_fast_assign(__entry->start = start;
			   __entry->end = end;
			   __entry->flags = flags;
			   __entry->pages = pages;
			   __entry->empty = empty;
			   __entry->thp = thp;),
	    TP_printk("start=%#lx end=%#lx flags=%#lx pages=%lu empty=%lu thp=%lu",
		      __entry->start, __entry->end, __entry->flags,
		      __entry->pages, __entry->empty, __entry->thp)
);

/*
 * Device pages collected by frame number (eviction): of @npages frames
 * (from @pfn for a range, listed from @pfn for a list), @pages base pages
 * now wait for the driver, @thp of them in 2 MiB entries.
 */
DECLARE_EVENT_CLASS(hmm_migrate_collect,
		    TP_PROTO(unsigned long pfn, unsigned long npages,
			     unsigned long pages, unsigned long thp),
		    TP_ARGS(pfn, npages, pages, thp),
		    TP_STRUCT__entry(__field(unsigned long, pfn)
				     __field(unsigned long, npages)
				     __field(unsigned long, pages)
				     __field(unsigned long, thp)),
		    TP_fast_assign(__entry->pfn = pfn;
				   __entry->npages = npages;
				   __entry->pages = pages;
				   __entry->thp = thp;),
		    TP_printk("pfn=%#lx npages=%lu pages=%lu thp=%lu",
			      __entry->pfn, __entry->npages, __entry->pages,
			      __entry->thp)
);

DEFINE_EVENT(hmm_migrate_collect, hmm_migrate_device_range,
	     TP_PROTO(unsigned long pfn, unsigned long npages,
		      unsigned long pages, unsigned long thp),
	     TP_ARGS(pfn, npages, pages, thp)
);

DEFINE_EVENT(hmm_migrate_collect, hmm_migrate_device_pfns,
	     TP_PROTO(unsigned long pfn, unsigned long npages,
		      unsigned long pages, unsigned long thp),
	     TP_ARGS(pfn, npages, pages, thp)
);

/*
 * The commit step (*_pages) or the finalize step (*_finalize) of a
 * migration of @npages entries is done: @moved base pages have moved (the
 * commit step: their state, ready to be mapped; finalize: mapped), @thp of
 * them in 2 MiB entries, and @kept base pages that were collected stay
 * where they were.
 */
DECLARE_EVENT_CLASS(hmm_migrate_commit,
		    TP_PROTO(unsigned long npages, unsigned long moved,
			     unsigned long thp, unsigned long kept),
		    TP_ARGS(npages, moved, thp, kept),
		    TP_STRUCT__entry(__field(unsigned long, npages)
				     __field(unsigned long, moved)
				     __field(unsigned long, thp)
				     __field(unsigned long, kept)),
		    TP_fast_assign(__entry->npages = npages;
				   __entry->moved = moved;
				   __entry->thp = thp;
				   __entry->kept = kept;),
		    TP_printk("npages=%lu moved=%lu thp=%lu kept=%lu",
			      __entry->npages, __entry->moved, __entry->thp,
			      __entry->kept)
);

DEFINE_EVENT(hmm_migrate_commit, hmm_migrate_vma_pages,
	     TP_PROTO(unsigned long npages, unsigned long moved,
		      unsigned long thp, unsigned long kept),
	     TP_ARGS(npages, moved, thp, kept)
);

DEFINE_EVENT(hmm_migrate_commit, hmm_migrate_vma_finalize,
	     TP_PROTO(unsigned long npages, unsigned long moved,
		      unsigned long thp, unsigned long kept),
	     TP_ARGS(npages, moved, thp, kept)
);

DEFINE_EVENT(hmm_migrate_commit, hmm_migrate_device_pages,
	     TP_PROTO(unsigned long npages, unsigned long moved,
		      unsigned long thp, unsigned long kept),
	     TP_ARGS(npages, moved, thp, kept)
);

DEFINE_EVENT(hmm_migrate_commit, hmm_migrate_device_finalize,
	     TP_PROTO(unsigned long npages, unsigned long moved,
		      unsigned long thp, unsigned long kept),
	     TP_ARGS(npages, moved, thp, kept)
);

/*
 * One entry moved: @nr base pages at @addr (0 when collected by frame
 * number) from frame @src_pfn in @from memory (an empty source has none)
 * to frame @dst_pfn in @to memory.
 */
TRACE_EVENT_FN(hmm_migrate_page,
	       TP_PROTO(unsigned long addr, unsigned long src_pfn,
			unsigned long dst_pfn, unsigned long nr,
			enum hmm_trace_mem from, enum hmm_trace_mem to),
	       TP_ARGS(addr, src_pfn, dst_pfn, nr, from, to),
	       TP_STRUCT__entry(__field(unsigned long, addr)
				__field(unsigned long, src_pfn)
				__field(unsigned long, dst_pfn)
				__field(unsigned long, nr)
				__field(unsigned int, from)
				__field(unsigned int, to)),
	       TP_fast_assign(__entry->addr = addr;
			      __entry->src_pfn = src_pfn;
			      __entry->dst_pfn = dst_pfn;
			      __entry->nr = nr;
			      __entry->from = from;
			      __entry->to = to;),
	       TP_printk("addr=%#lx src_pfn=%#lx dst_pfn=%#lx nr=%lu from=%s to=%s",
			 __entry->addr, __entry->src_pfn, __entry->dst_pfn,
			 __entry->nr, hmm_show_mem(__entry->from),
			 hmm_show_mem(__entry->to)),
	       hmm_trace_entries_reg, hmm_trace_entries_unreg
);

/*
 * One entry did not move, for @reason: @nr base pages at @addr (0 when
 * collected by frame number), of frame @pfn (0 for an empty slot).
 */
TRACE_EVENT_FN(hmm_migrate_skip,
	       TP_PROTO(unsigned long addr, unsigned long pfn, unsigned long nr,
			enum hmm_trace_skip reason),
	       TP_ARGS(addr, pfn, nr, reason),
	       TP_STRUCT__entry(__field(unsigned long, addr)
				__field(unsigned long, pfn)
				__field(unsigned long, nr)
				__field(unsigned int, reason)),
	       TP_fast_assign(__entry->addr = addr;
			      __entry->pfn = pfn;
			      __entry->nr = nr;
			      __entry->reason = reason;),
	       TP_printk("addr=%#lx pfn=%#lx nr=%lu reason=%s",
			 __entry->addr, __entry->pfn, __entry->nr,
			 hmm_show_skip(__entry->reason)),
	       hmm_trace_entries_reg, hmm_trace_entries_unreg
);

/*
 * A large folio, first frame @pfn, of @nr pages, at @addr (0 when not known
 * by address) was split so that its pages move one by one.
 */
TRACE_EVENT(hmm_migrate_split,
	    TP_PROTO(unsigned long addr, unsigned long pfn, unsigned long nr),
	    TP_ARGS(addr, pfn, nr),
	    TP_STRUCT__entry(__field(unsigned long, addr)
			     __field(unsigned long, pfn)
			     __field(unsigned long, nr)),
	    TP_fast_assign(__entry->addr = addr;
			   __entry->pfn = pfn;
			   __entry->nr = nr;),
	    TP_printk("addr=%#lx pfn=%#lx nr=%lu",
		      __entry->addr, __entry->pfn, __entry->nr)
);

/*
 * A CPU fault at @addr on a device-private entry of @nr pages, whose first
 * frame is @pfn, came back from the owner's migrate_to_ram() with @ret.
 */
TRACE_EVENT(hmm_device_private_fault,
	    TP_PROTO(unsigned long addr, unsigned long pfn, unsigned long nr,
		     vm_fault_t ret),
	    TP_ARGS(addr, pfn, nr, ret),
	    TP_STRUCT__entry(__field(unsigned long, addr)
			     __field(unsigned long, pfn)
			     __field(unsigned long, nr)
			     __field(unsigned int, ret)),
	    TP_fast_assign(__entry->addr = addr;
			   __entry->pfn = pfn;
			   __entry->nr = nr;
			   __entry->ret = (__force unsigned int)ret;),
	    TP_printk("addr=%#lx pfn=%#lx nr=%lu ret=%s",
		      __entry->addr, __entry->pfn, __entry->nr,
		      __entry->ret ? __print_flags(__entry->ret, "|", VM_FAULT_RESULT_TRACE) : "0")
);

/* The page at @addr, frame @pfn, as a device-exclusive entry. */
DECLARE_EVENT_CLASS(hmm_exclusive,
		    TP_PROTO(unsigned long addr, unsigned long pfn),
		    TP_ARGS(addr, pfn),
		    TP_STRUCT__entry(__field(unsigned long, addr)
				     __field(unsigned long, pfn)),
		    TP_fast_assign(__entry->addr = addr;
				   __entry->pfn = pfn;),
		    TP_printk("addr=%#lx pfn=%#lx",
			      __entry->addr, __entry->pfn)
);

/* make_device_exclusive() installed it. */
DEFINE_EVENT(hmm_exclusive, hmm_device_exclusive_grant,
	     TP_PROTO(unsigned long addr, unsigned long pfn),
	     TP_ARGS(addr, pfn)
);

/* The CPU's mapping came back in its place: the device's access is over. */
DEFINE_EVENT(hmm_exclusive, hmm_device_exclusive_revoke,
	     TP_PROTO(unsigned long addr, unsigned long pfn),
	     TP_ARGS(addr, pfn)
);

#endif /* _TRACE_HMM_H */

/* Outside the guard: define_trace.h reads this header again. */
#include <trace/define_trace.h>
