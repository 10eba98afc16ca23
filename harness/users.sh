#!/usr/bin/env bash
# Stage "users": compile the kernel's in-tree users of the HMM headers
# (nouveau SVM, amdgpu/KFD SVM, xe, RDMA on-demand paging) and of
# include/linux/memremap.h (nvdimm pmem, device-dax, p2pdma, NVMe's CMB,
# virtio-fs DAX, fs/dax.c, Xen's unpopulated memory) against the
# flavour's tree, in a build folder of their own (guest + hmm + users config,
# never booted), and compare their warnings with flavour upstream's. A user
# that does not compile, or a warning that upstream does not have, fails.
source "$(dirname "$0")/common.sh"
stage_start users

objects=(
	drivers/gpu/drm/nouveau/nouveau_svm.o
	drivers/gpu/drm/nouveau/nouveau_dmem.o
	drivers/gpu/drm/amd/amdgpu/../amdkfd/kfd_svm.o
	drivers/gpu/drm/amd/amdgpu/../amdkfd/kfd_migrate.o
	drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.o
	drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gpuvm.o
	drivers/gpu/drm/xe/xe_hmm.o
	drivers/infiniband/core/umem_odp.o
	drivers/nvdimm/pmem.o
	drivers/nvdimm/pfn_devs.o
	drivers/dax/device.o
	drivers/dax/bus.o
	drivers/dax/pmem.o
	drivers/pci/p2pdma.o
	drivers/nvme/host/pci.o
	fs/fuse/virtio_fs.o
	fs/dax.o
	drivers/xen/unpopulated-alloc.o
)

# users_build FLAVOUR: compile the objects in build/FLAVOUR/users; print the
# warning lines, with the tree's path taken out so flavours compare.
users_build() {
	local fl=$1 src=$BUILD/$1/src obj=$BUILD/$1/users log=$BUILD/$1/users.log
	FLAVOUR=$fl "$HARNESS/tree.sh" >/dev/null
	FLAVOUR=$fl "$HARNESS/config.sh" "$obj" guest hmm pagemaps users >&2 ||
		stage_fail "[$fl] the users config failed"
	# Touch the objects so they are compiled again and warn again.
	for o in "${objects[@]}"; do rm -f "$obj/$o"; done
	make -C "$src" O="$obj" ARCH=x86_64 -j"$JOBS" "${objects[@]}" >"$log" 2>&1 ||
		{ grep -E 'error' "$log" | head -n 20 >&2; stage_fail "[$fl] a user did not compile; see $log"; }
	grep -E 'warning:' "$log" | sed "s#$src/##g; s#^\.\./##" | sort -u || true
}

mine=$(users_build "$FLAVOUR")
new=""
if [ "$FLAVOUR" != upstream ]; then
	theirs=$(users_build upstream)
	new=$(comm -23 <(printf '%s\n' "$mine" | sed '/^$/d') <(printf '%s\n' "$theirs" | sed '/^$/d'))
fi
if [ -n "$new" ]; then
	printf '%s\n' "$new" >&2
	stage_fail "${#objects[@]} users compiled with new warnings (above)"
fi
stage_done "${#objects[@]} users compile against flavour $FLAVOUR with no warning upstream lacks"
