//! The user database of the system lowport writes to: `<root>/etc/passwd` and `<root>/etc/group`
//! under `--root`, the host's name service (NSS: files, LDAP, …) otherwise.

use serde::{Deserialize, Serialize};

use crate::root::Root;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (gids) the user is a member of.
    pub groups: Vec<u32>,
    /// The primary group's name, when the group database has it.
    pub group: Option<String>,
}

impl Account {
    /// Whether this account may execute a file with this owner, group and mode; root needs
    /// any execute bit at all.
    pub fn can_execute(&self, uid: u32, gid: u32, mode: u32) -> bool {
        let bit = if self.uid == 0 {
            0o111
        } else if self.uid == uid {
            0o100
        } else if self.gid == gid || self.groups.contains(&gid) {
            0o010
        } else {
            0o001
        };
        mode & bit != 0
    }
}

#[derive(Debug, Clone)]
pub struct UserDb {
    root: Root,
}

fn field_rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

impl UserDb {
    pub fn new(root: &Root) -> Self {
        UserDb { root: root.clone() }
    }

    fn read(&self, file: &str) -> String {
        super::files::read_to_string(&self.root.host(std::path::Path::new(file)))
            .unwrap_or_default()
    }

    pub fn group_gid(&self, name: &str) -> Option<u32> {
        // root is uid and gid 0 on every Linux system, even in a tree with no etc/group yet; naming
        // it without a name-service lookup also spares loading the NSS modules.
        if name == "root" {
            return Some(0);
        }
        if self.root.is_host() {
            return crate::os::group_gid(name);
        }
        field_rows(&self.read("/etc/group"))
            .find(|f| f.first() == Some(&name))
            .and_then(|f| f.get(2)?.parse().ok())
    }

    pub fn group_name(&self, gid: u32) -> Option<String> {
        if gid == 0 {
            return Some("root".into());
        }
        if self.root.is_host() {
            return crate::os::group_name(gid);
        }
        field_rows(&self.read("/etc/group"))
            .find(|f| f.get(2).and_then(|g| g.parse().ok()) == Some(gid))
            .map(|f| f[0].to_string())
    }

    /// A user's (`user`) or a group's name by id, in the shape `acl::writers` names them.
    pub fn name(&self, user: bool, id: u32) -> Option<String> {
        if user {
            self.user_name(id)
        } else {
            self.group_name(id)
        }
    }

    pub fn user_name(&self, uid: u32) -> Option<String> {
        if uid == 0 {
            return Some("root".into());
        }
        if self.root.is_host() {
            return crate::os::user_name(uid);
        }
        field_rows(&self.read("/etc/passwd"))
            .find(|f| f.get(2).and_then(|g| g.parse().ok()) == Some(uid))
            .map(|f| f[0].to_string())
    }

    pub fn user(&self, name: &str) -> Option<Account> {
        let (uid, gid) = if name == "root" {
            (0, 0)
        } else if self.root.is_host() {
            crate::os::user_ids(name)?
        } else {
            let text = self.read("/etc/passwd");
            let f = field_rows(&text).find(|f| f.first() == Some(&name))?;
            (f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)
        };
        let groups = if self.root.is_host() {
            crate::os::group_list(name, gid).unwrap_or_else(|| vec![gid])
        } else {
            let mut g = vec![gid];
            for f in field_rows(&self.read("/etc/group")) {
                let members = f.get(3).copied().unwrap_or("");
                if members.split(',').any(|m| m == name)
                    && let Some(id) = f.get(2).and_then(|s| s.parse().ok())
                {
                    g.push(id);
                }
            }
            g
        };
        Some(Account {
            group: self.group_name(gid),
            name: name.to_string(),
            uid,
            gid,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Account;

    fn account(uid: u32, gid: u32, groups: &[u32]) -> Account {
        Account {
            name: "u".into(),
            uid,
            gid,
            groups: groups.to_vec(),
            group: None,
        }
    }

    #[test]
    fn execute_permission_follows_owner_group_other() {
        let user = account(1000, 1000, &[1000, 27]);
        assert!(user.can_execute(1000, 0, 0o700), "owner bit");
        assert!(
            !user.can_execute(1000, 0, 0o070),
            "the owner is judged by the owner bits only"
        );
        assert!(user.can_execute(0, 27, 0o750), "a supplementary group");
        assert!(!user.can_execute(0, 50, 0o750), "others have no bit");
        assert!(user.can_execute(0, 50, 0o751));
        let root = account(0, 0, &[0]);
        assert!(
            root.can_execute(1000, 1000, 0o010),
            "root needs any execute bit"
        );
        assert!(!root.can_execute(1000, 1000, 0o644));
    }
}
