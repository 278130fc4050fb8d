//! The SVM's own users, for user names when there is no directory (or for
//! accounts only ONTAP knows): CIFS local users (name, SID) and UNIX users
//! (name, UID) through the REST API.

use crate::client::{OntapClient, encode};
use crate::error::OntapError;
use crate::types::{CifsLocalUser, UnixUser};

/// One local user: a SID (CIFS) or a UID (UNIX), and the account name
/// without the `SERVER\` prefix ONTAP gives CIFS local users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    pub name: String,
    pub sid: Option<String>,
    pub uid: Option<u32>,
}

/// Both lists of the SVM, at most `max` users each.
pub async fn local_users(
    client: &OntapClient,
    svm_name: &str,
    max: usize,
) -> Result<Vec<LocalUser>, OntapError> {
    let svm = encode(svm_name);
    let cifs: Vec<CifsLocalUser> = client
        .get_all(
            &format!(
                "/api/protocols/cifs/local-users?svm.name={svm}&fields=name,sid&max_records=1000"
            ),
            max,
        )
        .await?;
    let unix: Vec<UnixUser> = client
        .get_all(
            &format!(
                "/api/name-services/unix-users?svm.name={svm}&fields=name,id&max_records=1000"
            ),
            max,
        )
        .await?;
    let cifs = cifs.into_iter().map(|u| LocalUser {
        name: u.name.rsplit('\\').next().unwrap_or(&u.name).to_owned(),
        sid: u.sid,
        uid: None,
    });
    let unix = unix.into_iter().filter_map(|u| {
        Some(LocalUser {
            uid: Some(u32::try_from(u.id?).ok()?),
            name: u.name,
            sid: None,
        })
    });
    Ok(cifs.chain(unix).collect())
}
