//! agentd library
