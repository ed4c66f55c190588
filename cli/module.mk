CLI_SRCS := cli/modelc.c
