/* The static program of the worker's own image, as bytes inside the worker
 * (sandbox_image.cc reads them through these two symbols). */
  .section .rodata
  .balign 16
  .global cw_sandbox_program_begin
  .global cw_sandbox_program_end
cw_sandbox_program_begin:
  .incbin CW_SANDBOX_BINARY
cw_sandbox_program_end:
  .section .note.GNU-stack,"",@progbits
