# flex/bison output goes to build/gen/ (see Makefile).
FRONTEND_SRCS := frontend/diag.c frontend/sema.c frontend/parse.c
FRONTEND_GEN_OBJS := $(GEN)/parser.o $(GEN)/lexer.o

$(GEN)/parser.c $(GEN)/parser.h: frontend/parser.y
	@mkdir -p $(GEN)
	@echo "  BISON   $<"
	$(Q)bison -Wall --defines=$(GEN)/parser.h -o $(GEN)/parser.c $<

$(GEN)/lexer.c $(GEN)/lexer.h: frontend/lexer.l $(GEN)/parser.h
	@mkdir -p $(GEN)
	@echo "  FLEX    $<"
	$(Q)flex --header-file=$(GEN)/lexer.h -o $(GEN)/lexer.c $<

# generated code is not held to -Wextra
$(GEN)/%.o: $(GEN)/%.c
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Wno-unused-function -Wno-sign-compare -Wno-unused-parameter -c -o $@ $<

$(BUILD)/frontend/parse.o $(BUILD)/frontend/sema.o: $(GEN)/parser.h $(GEN)/lexer.h
