/* Shared definitions for vigil's BPF programs.
 *
 * The programs are compiled with -target bpfel against no kernel or libc
 * headers: the kernel structs they read are declared per program with
 * preserve_access_index (CO-RE), so the only things needed here are the
 * fixed-width types, the UAPI constants the programs use (stable ABI
 * numbers), and libbpf's helper declarations.
 */
#ifndef VIGIL_COMMON_BPF_H
#define VIGIL_COMMON_BPF_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

/* enum bpf_map_type (include/uapi/linux/bpf.h) */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_HASH 5
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_TASK_STORAGE 29

/* map update flags */
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_EXIST 2

/* map creation flags */
#define BPF_F_NO_PREALLOC (1U << 0)

/* bpf_*_storage_get flags */
#define BPF_LOCAL_STORAGE_GET_F_CREATE (1ULL << 0)

#define TASK_COMM_LEN 16

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#endif
