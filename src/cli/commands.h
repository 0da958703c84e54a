/* commands.h: the subcommands of `tnllm`, one file each in src/cli/.
 * Each takes the arguments after the command name (argv[0] is the name)
 * and returns the process exit status. */
#ifndef TN_CLI_COMMANDS_H
#define TN_CLI_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_data(int argc, char **argv);

/* tnllm data <command> (src/cli/cmd_data_<command>.c) */
int cmd_data_clean(int argc, char **argv);
int cmd_data_dedup(int argc, char **argv);
int cmd_data_score(int argc, char **argv);
int cmd_data_filter(int argc, char **argv);
int cmd_data_review(int argc, char **argv);
int cmd_data_bench(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_data_tokenize(int argc, char **argv);

#endif
