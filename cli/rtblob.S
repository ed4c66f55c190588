/* cli/rtblob.S — the runtime archive (build/libmodelc_rt.a) and jansson's
 * static archive inside modelc, so `modelc build` can link executables and
 * libraries with only a C compiler driver on the machine: no install tree,
 * no paths baked in.  (Debian's libjansson.a is not position-independent:
 * executables link it statically, shared libraries use libjansson.so.4.) */
    .section .rodata
    .balign 16
    .global modelc_rt_archive
modelc_rt_archive:
    .incbin RT_ARCHIVE
    .global modelc_rt_archive_end
modelc_rt_archive_end:
    .balign 16
    .global modelc_jansson_archive
modelc_jansson_archive:
    .incbin JANSSON_ARCHIVE
    .global modelc_jansson_archive_end
modelc_jansson_archive_end:
    .section .note.GNU-stack,"",@progbits
