# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vsctl_global_optspecs
    string join \n h/help V/version
end

function __fish_vsctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vsctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vsctl_using_subcommand
    set -l cmd (__fish_vsctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vsctl -n "__fish_vsctl_needs_command" -s h -l help -d 'Print help'
complete -c vsctl -n "__fish_vsctl_needs_command" -s V -l version -d 'Print version'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "create" -d 'Create a VS and print its VSID'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "destroy" -d 'Destroy a VS that has no child VSs and no member processes'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "set" -d 'Change the attributes of a VS'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "show" -d 'Show everything about one VS'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "list" -d 'List every VS as a tree; values in parentheses are inherited'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "stats" -d 'Show the counters of one VS, or of every VS as a table'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "apply" -d 'Bring the VSs and rules to those of a configuration file (TOML; - reads standard input)'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "export" -d 'Print the VSs and rules as a configuration file for `vsctl apply`'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "top" -d 'Show what every VS does now, refreshed every interval'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "version" -d 'Show the module\'s ABI version, how many VSs may exist and how many do'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "addrule" -d 'Add a classification rule and print its id (one id per rule it expands to)'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "delrule" -d 'Delete the rule with id ID (as `vsctl rules` shows it)'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "rules" -d 'List the rules in evaluation order: id, rule, and how often it decided'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "addprocess" -d 'Move a process to a VS and print how many tasks were moved'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "which" -d 'Print the VS a task belongs to: its name and VSID'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "ps" -d 'List the tasks of a VS, or of every VS but root: pid, command, VS'
complete -c vsctl -n "__fish_vsctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vsctl -n "__fish_vsctl_using_subcommand create" -s p -l parent -d 'Parent VS, by name or VSID [default: root]' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand create" -l id -d 'VSID: 1..63 (global, cluster-wide) or 64..2147483647 (local)' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand create" -l cpu-share -d 'CPU share in percent of the parent\'s share, 1..100 (gives the VS its own value)' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand create" -l net-share -d 'Network share in percent of the parent\'s share, 1..100 (gives the VS its own value)' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand create" -l max-procs -d 'Most processes in the VS and the VSs inheriting from it: a number or \'unlimited\'' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand destroy" -s h -l help -d 'Print help'
complete -c vsctl -n "__fish_vsctl_using_subcommand set" -l cpu-share -d 'CPU share in percent of the parent\'s share, 1..100 (gives the VS its own value)' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand set" -l net-share -d 'Network share in percent of the parent\'s share, 1..100 (gives the VS its own value)' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand set" -l max-procs -d 'Most processes in the VS and the VSs inheriting from it: a number or \'unlimited\'' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand set" -l detach -d 'Give the VS its own copy of the inherited value (repeatable, or comma-separated)' -r -f -a "cpu\t'CPU share'
net\t'Network share'
procs\t'Process limit'"
complete -c vsctl -n "__fish_vsctl_using_subcommand set" -l attach -d 'Drop the own value and inherit from the nearest ancestor that has one (repeatable)' -r -f -a "cpu\t'CPU share'
net\t'Network share'
procs\t'Process limit'"
complete -c vsctl -n "__fish_vsctl_using_subcommand set" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand show" -l json -d 'Print JSON'
complete -c vsctl -n "__fish_vsctl_using_subcommand show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand list" -l json -d 'Print a JSON array of VS objects (as `show --json`), parents before children'
complete -c vsctl -n "__fish_vsctl_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand stats" -l format -d 'Output format' -r -f -a "text\t'A table, or one counter a line for one VS'
json\t'JSON, as --json'
prometheus\t'Prometheus text exposition format'"
complete -c vsctl -n "__fish_vsctl_using_subcommand stats" -l json -d 'Print JSON (the same as --format json)'
complete -c vsctl -n "__fish_vsctl_using_subcommand stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand apply" -s n -l dry-run -d 'Print the steps, change nothing'
complete -c vsctl -n "__fish_vsctl_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand top" -s d -l interval -d 'Seconds between frames, at least 0.1' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand top" -s n -l count -d 'Stop after N frames [default: run until interrupted]' -r
complete -c vsctl -n "__fish_vsctl_using_subcommand top" -l json -d 'Print each frame as one line of JSON: {"time", "interval", "vs": [...]}'
complete -c vsctl -n "__fish_vsctl_using_subcommand top" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand version" -l json -d 'Print JSON'
complete -c vsctl -n "__fish_vsctl_using_subcommand version" -s h -l help -d 'Print help'
complete -c vsctl -n "__fish_vsctl_using_subcommand addrule" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand delrule" -s h -l help -d 'Print help'
complete -c vsctl -n "__fish_vsctl_using_subcommand rules" -l json -d 'Print a JSON array of rule objects'
complete -c vsctl -n "__fish_vsctl_using_subcommand rules" -s h -l help -d 'Print help'
complete -c vsctl -n "__fish_vsctl_using_subcommand addprocess" -l tree -d 'Move the descendants of the process too'
complete -c vsctl -n "__fish_vsctl_using_subcommand addprocess" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand which" -l json -d 'Print JSON'
complete -c vsctl -n "__fish_vsctl_using_subcommand which" -s h -l help -d 'Print help'
complete -c vsctl -n "__fish_vsctl_using_subcommand ps" -l json -d 'Print JSON'
complete -c vsctl -n "__fish_vsctl_using_subcommand ps" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "create" -d 'Create a VS and print its VSID'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "destroy" -d 'Destroy a VS that has no child VSs and no member processes'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "set" -d 'Change the attributes of a VS'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "show" -d 'Show everything about one VS'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "list" -d 'List every VS as a tree; values in parentheses are inherited'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "stats" -d 'Show the counters of one VS, or of every VS as a table'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "apply" -d 'Bring the VSs and rules to those of a configuration file (TOML; - reads standard input)'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "export" -d 'Print the VSs and rules as a configuration file for `vsctl apply`'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "top" -d 'Show what every VS does now, refreshed every interval'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "version" -d 'Show the module\'s ABI version, how many VSs may exist and how many do'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "addrule" -d 'Add a classification rule and print its id (one id per rule it expands to)'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "delrule" -d 'Delete the rule with id ID (as `vsctl rules` shows it)'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "rules" -d 'List the rules in evaluation order: id, rule, and how often it decided'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "addprocess" -d 'Move a process to a VS and print how many tasks were moved'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "which" -d 'Print the VS a task belongs to: its name and VSID'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "ps" -d 'List the tasks of a VS, or of every VS but root: pid, command, VS'
complete -c vsctl -n "__fish_vsctl_using_subcommand help; and not __fish_seen_subcommand_from create destroy set show list stats apply export top version addrule delrule rules addprocess which ps help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
